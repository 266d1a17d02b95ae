#!/bin/sh
# Fast source checks, before any build: banned functions, include direction against the
# CH_DEPS_* lines of CMakeLists.txt, and docs/internals/README.md's generated dependency list.
# The checks themselves are in check_source.py (what each checks and why is said there).
# Usage: scripts/check_source.sh [--doc | --update-doc]
exec python3 "$(dirname "$0")/check_source.py" "$@"
