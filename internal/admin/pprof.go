package admin

import (
	"net/http"
	"net/http/pprof"
)

// PathPprof is the root of Go's profiling endpoints (net/http/pprof):
// /debug/pprof/profile?seconds=N (CPU), /debug/pprof/heap, goroutine,
// mutex, block, allocs, trace. They sit behind the admin token like every
// other endpoint but the health checks: a profile shows file names and
// timings, and taking one costs the node CPU. The mutex and block
// profiles stay empty unless fsrepd runs with --profile-contention.
const PathPprof = "/debug/pprof/"

func routePprof(api *http.ServeMux) {
	api.HandleFunc("GET "+PathPprof, pprof.Index) // heap, goroutine, mutex, block, allocs... by name
	api.HandleFunc("GET "+PathPprof+"cmdline", pprof.Cmdline)
	api.HandleFunc("GET "+PathPprof+"profile", pprof.Profile)
	api.HandleFunc("GET "+PathPprof+"symbol", pprof.Symbol)
	api.HandleFunc("GET "+PathPprof+"trace", pprof.Trace)
}
