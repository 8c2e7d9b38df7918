#!/usr/bin/env bash
# Install Orthanc (a real PACS) and its DICOMweb plugin from Debian, for the tests that talk to a PACS.
#
#   bash .ci/orthanc.sh          # installs the packages with apt-get when absent; prints the Orthanc binary's path
#
# Idempotent: with both packages installed it only checks them (no apt-get call). The packages' own system service
# is never used: the tests start their own Orthanc on 127.0.0.1 with a throwaway storage folder (tests/orthanc.py).
set -euo pipefail

log() { echo "[orthanc] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

plugin=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
if ! command -v Orthanc >/dev/null 2>&1 || [[ ! -f "$plugin" ]]; then
    command -v apt-get >/dev/null 2>&1 || die "Orthanc is missing and apt-get is not available: install the Debian \
packages orthanc and orthanc-dicomweb (or Orthanc with its DICOMweb plugin) by hand"
    sudo=""
    [[ "$(id -u)" == 0 ]] || sudo="sudo"
    log "installing orthanc and orthanc-dicomweb with apt-get"
    $sudo apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends orthanc orthanc-dicomweb >&2
fi
command -v Orthanc >/dev/null 2>&1 || die "the Orthanc binary is not on PATH after the install"
[[ -f "$plugin" ]] || die "the DICOMweb plugin $plugin is missing after the install"
log "$(Orthanc --version 2>/dev/null | head -n 1), DICOMweb plugin $plugin"
command -v Orthanc
