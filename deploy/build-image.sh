#!/usr/bin/env bash
# Build the m2mauth container image (Containerfile) without pulling any
# image: the binary is compiled here, with CGO_ENABLED=0, then podman builds
# FROM scratch over it.
#
#   deploy/build-image.sh [TAG]        # default m2mauth:latest
#
# PODMAN is the podman command with its global options, default "podman";
# on a machine without overlay support, PODMAN="podman --storage-driver vfs".
# The image is built in docker format: the OCI format has no HEALTHCHECK.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-m2mauth:latest}
read -r -a podman <<<"${PODMAN:-podman}"

# The build context: rootfs/ is copied to / as root's, owned/ as the
# image user's. Directories are copied as the contents of these trees so
# that their modes (/data 0700, /tmp 1777) are kept.
umask 022
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/owned"
# -buildvcs=auto: the commit is stamped (m2mauth version) even where
# GOFLAGS turns it off.
CGO_ENABLED=0 go build -trimpath -buildvcs=auto -o "$ctx/rootfs/m2mauth" ./cmd/m2mauth
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
mkdir -m 1777 "$ctx/rootfs/tmp"
mkdir -m 0700 "$ctx/owned/data"
chmod 0755 "$ctx" "$ctx/rootfs" "$ctx/owned"
cp Containerfile "$ctx/Containerfile"

"${podman[@]}" build --pull=never --isolation chroot --format docker \
  -t "$tag" -f "$ctx/Containerfile" "$ctx"
