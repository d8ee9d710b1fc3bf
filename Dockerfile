# fsrep node image. No base image can be pulled here, so nothing is built inside
# docker: `make images` builds static linux binaries (CGO_ENABLED=0) on the host
# into build/image/ and uses that folder as the build context.
# The image has no shell, libc, /tmp or CA certificates: only the binaries
# (fsrep-workload is the compose harness's client, run with --entrypoint).
FROM scratch
COPY fsrepd fsrepctl fsrep-workload /
# raft, internode RPC, NFS (MOUNT on the same port), admin HTTP
EXPOSE 7000 7001 2049 9090
ENTRYPOINT ["/fsrepd"]
