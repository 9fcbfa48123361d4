#!/bin/sh
# The image's entry point. `run` (the default) applies the migrations first, then replaces this
# shell with the bot, so SIGTERM reaches it directly and it stops cleanly (exit 0). Any other
# liaisonbot command runs as given (`check-config`, `export CASE`, `audit verify`, …); anything
# else is executed as is (`sh` for a look around).
set -eu
[ "$#" -gt 0 ] || set -- run
case "$1" in
    run)
        shift
        liaisonbot db upgrade "$@"
        exec liaisonbot run "$@"
        ;;
    console|db|check-config|export|audit|-h|--help)
        exec liaisonbot "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
