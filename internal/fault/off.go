//go:build !faultpoints

package fault

// Enabled reports whether this is a test build with fault points.
const Enabled = false

// Point is a fault point; in this build it never fires.
func Point(string) error { return nil }
