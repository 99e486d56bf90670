"""An entrypoint that turns Swarm secrets (files under /run/secrets) into the env vars a
program expects, for programs that read passwords only from their environment.

Consumed by `/bin/sh` (POSIX; the Patroni image's dash). The `*_FILE` convention: for
every variable `NAME_FILE=<path>`, `NAME` is exported with the file's content (trailing
newline dropped) and `NAME_FILE` is unset, then the command runs in the shell's place.
The values never appear in the service spec, which `docker service inspect` shows.
"""

from __future__ import annotations

FILE_SUFFIX = "_FILE"


def secret_files_entrypoint() -> str:
    """The script; its arguments are the command to exec."""
    return f"""#!/bin/sh
# Rendered by hastack: export NAME from the file named by each NAME{FILE_SUFFIX}, then exec "$@".
set -eu
for name in $(env | sed -n 's/^\\([A-Z_][A-Z0-9_]*\\){FILE_SUFFIX}=.*/\\1/p'); do
  eval "path=\\${{${{name}}{FILE_SUFFIX}}}"
  if [ ! -r "$path" ]; then
    echo "hastack: ${{name}}{FILE_SUFFIX} names $path, which is not a readable file" >&2
    exit 1
  fi
  value=$(cat "$path")
  export "$name=$value"
  unset "${{name}}{FILE_SUFFIX}"
done
exec "$@"
"""
