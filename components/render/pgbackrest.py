"""pgBackRest: pgbackrest.conf, the archive settings of every node, and the scripts that
create the stanza, restore a cluster and take scheduled backups.

Consumed by `pgbackrest` (2.45 on Debian bookworm, which the tests run; the images install
the release `backups.pgbackrestVersion` names), by `postgres` (the archive settings), by
`sh`/`bash` (the scripts, which also use `jq` and GNU `date`) and by supercronic (the
crontab). No secret appears in any rendered text: pgBackRest reads the repository
passphrase and object-store credentials from `PGBACKREST_REPO1_*` environment variables
(https://pgbackrest.org/configuration.html#introduction: "any option may be set in the
environment ... PGBACKREST_<OPTION>"), which the containers get as Pulumi secrets.

- `render_pgbackrest_conf`: the config file every pgBackRest command reads
- `archive_parameters`: archive_mode/archive_command/archive_timeout for postgres
- `stanza_create_script`: an initdb.d script, run once against the image's temporary server
- `restore_script`: sh that fills an empty data dir from the repository (or refuses)
- `backup_job_script` / `render_crontab`: the scheduled backups, from a standby when one
  streams (every node lists its peers as pg2..pgN, reached through their `pgbackrest server`)
- `tls_server_command`: that TLS server, run beside every node
"""

from __future__ import annotations

import configparser
import io
import re
import shlex
from dataclasses import dataclass
from datetime import datetime, timezone

# Environment variables pgBackRest reads the secrets from (repo1-cipher-pass, ...).
CIPHER_PASS_ENV = "PGBACKREST_REPO1_CIPHER_PASS"
S3_KEY_ENV = "PGBACKREST_REPO1_S3_KEY"
S3_KEY_SECRET_ENV = "PGBACKREST_REPO1_S3_KEY_SECRET"
AZURE_KEY_ENV = "PGBACKREST_REPO1_AZURE_KEY"
# Fixed for the life of the repository: pgBackRest refuses to change the cipher of an
# existing stanza (https://pgbackrest.org/user-guide.html#quickstart/configure-encryption:
# "the repository ... must be created with the cipher settings").
CIPHER_TYPE = "aes-256-cbc"

# Lines the scripts print, so logs (and tests) show which path they took.
RESTORE_MARKER = "hastack-restore: restoring from the repository"
RESUME_MARKER = "hastack-restore: resuming an interrupted restore"
EXISTING_CLUSTER_MARKER = "hastack-restore: data dir already holds a cluster, starting it"
NOT_OURS_MARKER = "hastack-restore: refusing to restore into a non-empty data dir this restore did not create"
OUTSIDE_WINDOW_MARKER = "hastack-restore: target outside the repository's window"
BACKUP_SKIPPED_MARKER = "hastack-backup: this node is a standby; backups run on the primary"
BACKUP_CURRENT_MARKER = "hastack-backup: the newest backup is on this timeline"
STANDBY_BACKUP_MARKER = "hastack-backup: backing up from a streaming standby"
STANDBY_UNREACHABLE_MARKER = "hastack-backup: no standby reachable through pgBackRest; backing up from the primary"
# pgBackRest's exit code for "unable to find standby cluster - cannot proceed", which 2.45
# raises when backup-standby=y finds no standby (src/db/helper.c dbGet; DbConnectError is 56
# in src/build/error/error.yaml). 2.45 has no backup-standby=prefer to fall back by itself.
DB_CONNECT_ERROR = 56
# `pgbackrest server`'s default port (https://pgbackrest.org/configuration.html#section-server/option-tls-server-port).
TLS_SERVER_PORT = 8432

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")
_PATH = re.compile(r"^(/[A-Za-z0-9._-]+)+$")


def _check_path(value: str, what: str) -> None:
    if not _PATH.match(value):
        raise ValueError(f"{what} must be an absolute path of letters, digits, '.', '_' and '-', got {value!r}")


@dataclass(frozen=True)
class RepositorySettings:
    """repo1: a POSIX directory (a dedicated volume), an S3 bucket or an Azure Blob container."""

    type: str  # "posix" | "s3" | "azure"
    path: str  # repo1-path
    retention_full: int
    retention_diff: int
    endpoint: str | None = None  # host[:port] of the object store
    bucket: str | None = None  # s3 bucket, or azure container
    region: str | None = None  # s3 only
    account: str | None = None  # azure only
    uri_style: str = "host"
    # A CA bundle to verify the object store's certificate (a test CA); None: the system's.
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.type not in {"posix", "s3", "azure"}:
            raise ValueError(f"repository type must be posix, s3 or azure, got {self.type!r}")
        _check_path(self.path, "repository path")
        if self.type != "posix" and not (self.endpoint and self.bucket):
            raise ValueError(f"a {self.type} repository needs an endpoint and a bucket/container")
        if self.retention_full < 1 or self.retention_diff < 1:
            raise ValueError("retention must keep at least one backup")


@dataclass(frozen=True)
class PeerTls:
    """Mutual TLS between the nodes' pgBackRest, through its own TLS server (`pgbackrest
    server`, pgBackRest >= 2.37): each node's server presents the server certificate and
    admits a client whose certificate the CA signed and whose CN is `client_common_name`
    (tls-server-auth, https://pgbackrest.org/configuration.html#section-server/option-tls-server-auth);
    each node presents the client certificate to its peers' servers (pgN-host-cert-file)."""

    ca_file: str
    server_certificate_file: str
    server_key_file: str
    client_certificate_file: str
    client_key_file: str
    client_common_name: str
    # "*": every interface of the container; tests bind 127.0.0.1.
    server_address: str = "*"
    server_port: int = TLS_SERVER_PORT

    def __post_init__(self) -> None:
        for what in ("ca_file", "server_certificate_file", "server_key_file", "client_certificate_file", "client_key_file"):
            _check_path(getattr(self, what), what)
        if not re.match(r"^[A-Za-z0-9._-]+$", self.client_common_name):
            raise ValueError(f"client_common_name must be letters, digits, '.', '_' and '-', got {self.client_common_name!r}")


@dataclass(frozen=True)
class PeerNode:
    """Another node of the cluster as pgBackRest reaches it: its TLS server, and where its
    data dir and socket are on its own host."""

    host: str
    pg_path: str
    pg_port: int
    pg_socket_path: str
    tls_port: int = TLS_SERVER_PORT

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z0-9.-]+$", self.host):
            raise ValueError(f"peer host must be a DNS name or an IPv4 address, got {self.host!r}")
        _check_path(self.pg_path, "peer pg_path")
        _check_path(self.pg_socket_path, "peer pg_socket_path")


@dataclass(frozen=True)
class PgBackRestSettings:
    stanza: str
    pg_path: str  # the data dir, as postgres reports data_directory
    pg_port: int
    pg_socket_path: str  # where the server's unix socket is (pgBackRest connects over it, as postgres)
    repository: RepositorySettings
    archive_timeout_s: int
    config_path: str = "/etc/pgbackrest/pgbackrest.conf"
    # Async archive-push keeps only status files here, never WAL, so a local, ephemeral dir
    # is enough; it must not be inside pg_wal.
    spool_path: str = "/var/spool/pgbackrest"
    lock_path: str = "/tmp/pgbackrest"
    log_path: str = "/var/log/pgbackrest"
    # "off" in containers (their stderr is the log); tests keep a file per run.
    log_level_file: str = "off"
    process_max: int = 2
    # None: pgbackrest on PATH (the images); an absolute path in tests.
    binary: str | None = None
    # The cluster's other nodes, pg2..pgN (pgBackRest finds which one is the primary), so
    # a backup can copy the data files from a standby. They need `tls`.
    peers: tuple[PeerNode, ...] = ()
    tls: PeerTls | None = None
    # The backup's io-timeout: a standby whose TLS server is down costs about twice this
    # before pgBackRest gives up on it and the job backs up from the primary. None:
    # pgBackRest's default, 60 s (https://pgbackrest.org/configuration.html#section-general/option-io-timeout).
    backup_io_timeout_s: int | None = None

    def __post_init__(self) -> None:
        if self.peers and self.tls is None:
            raise ValueError("peers are reached through their pgBackRest TLS server: set tls")
        if not _IDENTIFIER.match(self.stanza):
            raise ValueError(f"stanza must match [a-z_][a-z0-9_-]*, got {self.stanza!r}")
        for what in ("pg_path", "pg_socket_path", "config_path", "spool_path", "lock_path", "log_path"):
            _check_path(getattr(self, what), what)
        if self.spool_path.startswith(self.pg_path.rstrip("/") + "/"):
            raise ValueError("spool_path must be outside the data dir (and so outside pg_wal)")
        if self.archive_timeout_s < 1:
            raise ValueError("archive_timeout_s must be >= 1")

    def command(self, *args: str) -> str:
        """A pgbackrest command line for this stanza and config file, shell-quoted."""
        return shlex.join([self.binary or "pgbackrest", f"--config={self.config_path}", f"--stanza={self.stanza}", *args])


def _split_endpoint(endpoint: str) -> tuple[str, str | None]:
    host, _, port = endpoint.partition(":")
    return host, port or None


def render_pgbackrest_conf(s: PgBackRestSettings) -> str:
    """pgbackrest.conf (INI). Secrets come from PGBACKREST_REPO1_* in the environment."""
    repo = s.repository
    options: dict[str, str] = {
        "repo1-type": repo.type,
        "repo1-path": repo.path,
        "repo1-cipher-type": CIPHER_TYPE,
        "repo1-retention-full-type": "count",
        "repo1-retention-full": str(repo.retention_full),
        "repo1-retention-diff": str(repo.retention_diff),
    }
    if repo.type != "posix":
        host, port = _split_endpoint(repo.endpoint or "")
        prefix = f"repo1-{repo.type}"
        options[f"{prefix}-{'bucket' if repo.type == 's3' else 'container'}"] = repo.bucket or ""
        options[f"{prefix}-endpoint"] = host
        options[f"{prefix}-uri-style"] = repo.uri_style
        if repo.type == "s3":
            options["repo1-s3-region"] = repo.region or "us-east-1"
        else:
            options["repo1-azure-account"] = repo.account or ""
        if port:
            options["repo1-storage-port"] = port
        if repo.ca_file:
            options["repo1-storage-ca-file"] = repo.ca_file
    options |= {
        # zstd: smaller than the default gzip and several times faster to compress and
        # decompress, which is most of a restore's time (https://pgbackrest.org/configuration.html#section-general/option-compress-type).
        "compress-type": "zst",
        "spool-path": s.spool_path,
        "lock-path": s.lock_path,
        "log-path": s.log_path,
        "log-level-console": "info",
        "log-level-stderr": "warn",
        "log-level-file": s.log_level_file,
        "process-max": str(s.process_max),
        "start-fast": "y",
        # Deliberately no archive-push-queue-max: once exceeded, pgBackRest drops WAL and
        # reports it archived (https://pgbackrest.org/configuration.html#section-archive/option-archive-push-queue-max),
        # which silently breaks point-in-time recovery. A full pg_wal is the louder failure.
    }
    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str  # option names are case-sensitive
    config["global"] = options
    # Async for archive-push only: archive-push returns to postgres only once a segment is
    # in the repository, and async lets one process push several at once (the spool keeps
    # status files, never WAL). archive-get stays synchronous, so a restore never serves
    # WAL from a spool it did not fill.
    config["global:archive-push"] = {"archive-async": "y"}
    config[s.stanza] = {"pg1-path": s.pg_path, "pg1-port": str(s.pg_port), "pg1-socket-path": s.pg_socket_path}
    if s.peers:
        # For `backup` only: `check`, archive-push, restore and stanza-create stay on this
        # node, so a peer that is down never fails them (2.45's `check` errors, [049], when
        # a configured pg host is unreachable).
        config[f"{s.stanza}:backup"] = _peer_options(s)
    if s.tls is not None:
        config["global:server"] = {
            "tls-server-address": s.tls.server_address,
            "tls-server-port": str(s.tls.server_port),
            "tls-server-ca-file": s.tls.ca_file,
            "tls-server-cert-file": s.tls.server_certificate_file,
            "tls-server-key-file": s.tls.server_key_file,
            # The peers' client CN, for this stanza only.
            "tls-server-auth": f"{s.tls.client_common_name}={s.stanza}",
        }
    out = io.StringIO()
    out.write("# Rendered by hastack. Secrets come from the environment (PGBACKREST_REPO1_*).\n")
    config.write(out, space_around_delimiters=False)
    return out.getvalue()


def _peer_options(s: PgBackRestSettings) -> dict[str, str]:
    """pg2..pgN: the peers through their TLS servers (the user guide's "Backup from a
    Standby", https://pgbackrest.org/user-guide.html#standby-backup)."""
    options: dict[str, str] = {} if s.backup_io_timeout_s is None else {"io-timeout": str(s.backup_io_timeout_s)}
    for index, peer in enumerate(s.peers, start=2):
        prefix = f"pg{index}"
        options |= {
            f"{prefix}-host": peer.host,
            f"{prefix}-host-type": "tls",
            f"{prefix}-host-port": str(peer.tls_port),
            f"{prefix}-host-ca-file": s.tls.ca_file,
            f"{prefix}-host-cert-file": s.tls.client_certificate_file,
            f"{prefix}-host-key-file": s.tls.client_key_file,
            f"{prefix}-path": peer.pg_path,
            f"{prefix}-port": str(peer.pg_port),
            f"{prefix}-socket-path": peer.pg_socket_path,
        }
    return options


def tls_server_command(s: PgBackRestSettings) -> list[str]:
    """argv of the node's pgBackRest TLS server, which its peers' backups read its data
    dir through (`server` takes no stanza: tls-server-auth names the stanzas)."""
    return [s.binary or "pgbackrest", f"--config={s.config_path}", "server"]


def archive_parameters(s: PgBackRestSettings) -> dict[str, str]:
    """postgresql.conf settings that archive every WAL segment into the repository.

    Every node gets them: a standby does not archive with archive_mode=on (only `always`
    would, and then every standby would push the same segments), and once promoted it
    archives on its new timeline. archive_timeout makes a quiet primary switch segments,
    so at most that much committed work is not yet archived.
    """
    return {
        "archive_mode": "on",
        "archive_command": s.command("archive-push", "%p"),
        "archive_timeout": f"{s.archive_timeout_s}s",
    }


def server_flags(parameters: dict[str, str]) -> list[str]:
    """`-c name=value` pairs for the `postgres` command line."""
    return [arg for name, value in parameters.items() for arg in ("-c", f"{name}={value}")]


def stanza_create_script(s: PgBackRestSettings) -> str:
    """bash for /docker-entrypoint-initdb.d/, run once at initdb time against the image's
    temporary server (which runs with archive_mode=off): creates the stanza, or accepts
    an existing one of this same cluster. A repository holding another cluster's stanza
    makes it fail, so initdb fails instead of mixing two clusters' WAL."""
    return f"""#!/usr/bin/env bash
# Rendered by hastack: the pgBackRest stanza for this cluster, created once.
{s.command("stanza-create")}
"""


def restore_target_text(target: str) -> str | None:
    """A config target ('latest', or a time with an offset) in pgBackRest's own time format,
    'YYYY-MM-DD HH:MM:SS[.ffffff]+00' in UTC; None for 'latest'.

    pgBackRest parses the target to pick the backup set and rejects other forms
    (src/command/restore/select.c.inc: "time format must be YYYY-MM-DD HH:MM:SS with
    optional msec and optional timezone"), and without an offset it assumes local time.
    """
    if target == "latest":
        return None
    moment = datetime.fromisoformat(target.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"restore target {target!r} needs an explicit offset, e.g. 2026-12-01T10:00:00Z")
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%d %H:%M:%S") + (f".{utc.microsecond:06d}" if utc.microsecond else "") + "+00"


@dataclass(frozen=True)
class RestoreSettings:
    backup: PgBackRestSettings
    target: str  # "latest" or a time with an explicit offset
    # Drills and clones: write archive_mode=off so the copy never pushes into the stanza.
    archive_off: bool = False
    # None: end by starting nothing (Patroni's bootstrap method starts postgres itself);
    # else the argv after `postgres -D <data dir>` to exec once restored.
    postgres_argv: tuple[str, ...] | None = None
    postgres_binary: str = "postgres"

    def __post_init__(self) -> None:
        restore_target_text(self.target)  # raises on a target without an offset


def restore_options(s: RestoreSettings) -> list[str]:
    """`pgbackrest restore` options for the target; the timeline is always explicit
    (`latest`: the newest timeline in the archive, so a restore after a promotion follows
    it), and a time target promotes once reached instead of pausing."""
    target = restore_target_text(s.target)
    options = ["--type=default"] if target is None else ["--type=time", f"--target={target}", "--target-action=promote"]
    options.append("--target-timeline=latest")
    if s.archive_off:
        options.append("--archive-mode=off")
    return options


def restore_script(s: RestoreSettings) -> str:
    """sh, run as postgres: fill an empty data dir from the repository, then run postgres
    (or return, for Patroni).

    - a data dir holding a cluster (restored earlier, or any other) is started as it is;
    - one holding pgBackRest's backup.manifest is a restore that was interrupted, resumed
      with --delta (pgBackRest writes the manifest first and removes it last,
      src/command/restore/restore.c);
    - any other non-empty dir is refused, untouched;
    - before anything is written, `pgbackrest info --output=json` must show a backup,
      and a time target must lie between the oldest backup's end and now.
    """
    b = s.backup
    q = shlex.quote
    target = restore_target_text(s.target)
    restore = b.command("restore", *restore_options(s))
    if s.postgres_argv is None:
        finish = "exit 0"
    else:
        finish = f'exec {q(s.postgres_binary)} -D "$data_dir" {shlex.join(s.postgres_argv)}'
    window_check = "" if target is None else f"""
target_epoch=$(date -u -d {q(target)} +%s)
now_epoch=$(date -u +%s)
if [ "$target_epoch" -lt "$oldest" ] || [ "$target_epoch" -gt "$now_epoch" ]; then
    echo "{OUTSIDE_WINDOW_MARKER}: {target} is not between the oldest backup's end, $(date -u -d "@$oldest" '+%Y-%m-%d %H:%M:%S+00'), and now, $(date -u -d "@$now_epoch" '+%Y-%m-%d %H:%M:%S+00'); nothing was restored" >&2
    exit 1
fi
"""
    return f"""#!/bin/sh
# Rendered by hastack: bootstraps this cluster from the pgBackRest repository (stanza {b.stanza}),
# target {s.target}. Secrets come from PGBACKREST_REPO1_* in the environment.
set -eu
data_dir={q(b.pg_path)}

if [ "$(id -u)" = 0 ]; then
    echo "hastack-restore: run this as the postgres user; pgbackrest and postgres refuse root" >&2
    exit 1
fi

delta=""
if [ -f "$data_dir/backup.manifest" ]; then
    echo "{RESUME_MARKER} in $data_dir"
    delta="--delta"
elif [ -f "$data_dir/PG_VERSION" ]; then
    echo "{EXISTING_CLUSTER_MARKER}"
    {finish}
elif [ -n "$(ls -A "$data_dir" 2>/dev/null)" ]; then
    echo "{NOT_OURS_MARKER}: $data_dir" >&2
    exit 1
fi

# Nothing is written before the repository shows a backup that reaches the target.
info=$({b.command("--output=json", "info")})
status=$(printf '%s' "$info" | jq -r '.[0].status.code')
if [ "$status" != 0 ]; then
    echo "hastack-restore: stanza {b.stanza} cannot be restored: $(printf '%s' "$info" | jq -r '.[0].status.message'); nothing was restored" >&2
    exit 1
fi
oldest=$(printf '%s' "$info" | jq -r '[.[0].backup[].timestamp.stop] | min')
{window_check}
mkdir -p "$data_dir"
chmod 0700 "$data_dir"
echo "{RESTORE_MARKER} into $data_dir (target {s.target})"
{restore} $delta
{finish}
"""


def replica_restore_command(s: PgBackRestSettings) -> str:
    """`pgbackrest restore` that turns a data dir into a standby of the newest timeline
    (Patroni's create_replica_methods); --delta reuses files the dir still has."""
    return s.command("restore", "--type=standby", "--delta", "--target-timeline=latest")


@dataclass(frozen=True)
class BackupJobSettings:
    backup: PgBackRestSettings
    # How this node asks its own server whether it is a standby.
    psql: str = "psql"


def _job_psql(s: BackupJobSettings) -> str:
    """psql to this node's own server over its socket, printing bare values."""
    q = shlex.quote
    return f"{q(s.psql)} -X -A -t -h {q(s.backup.pg_socket_path)} -p {s.backup.pg_port} -U postgres -d postgres"


def backup_job_script(s: BackupJobSettings) -> str:
    """sh, the scheduler's job: `hastack-backup full|diff|ensure`.

    It runs on every node and backs up only where the node is the primary, so after a
    failover the new primary takes over the schedule. `ensure` (every few minutes) takes
    a full backup when the newest one is from an older timeline or there is none: after
    a first start, a promotion or a restore, a new backup comes at once, then `check`
    proves archiving works. Retention is enforced by the `expire` every backup runs.

    With peers, a backup while a standby streams is `--backup-standby`: pgBackRest starts
    and stops it on the primary and copies the replicated files from the standby
    (https://pgbackrest.org/user-guide.html#standby-backup). When no standby is reachable
    through its TLS server, 2.45 fails ([056]) instead of falling back, so the job
    backs up from the primary then: a backup matters more than sparing the primary.
    """
    b = s.backup
    psql = _job_psql(s)
    return f"""#!/bin/sh
# Rendered by hastack: a scheduled pgBackRest backup of stanza {b.stanza}.
set -eu
kind="${{1:?usage: hastack-backup full|diff|ensure}}"

if [ "$({psql} -c 'SELECT pg_is_in_recovery()')" != f ]; then
    echo "{BACKUP_SKIPPED_MARKER}"
    exit 0
fi

# The timeline of the WAL being written now: pg_control's checkpoint still shows the
# old one until the first checkpoint after a promotion.
timeline=$({psql} -c 'SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)')

if [ "$kind" = ensure ]; then
    # Status 1, "missing stanza path": a cluster Patroni bootstrapped (no initdb.d scripts).
    if [ "$({b.command("--output=json", "info")} | jq -r '.[0].status.code')" = 1 ]; then
        {b.command("stanza-create")}
    fi
    newest=$({b.command("--output=json", "info")} | jq -r '[.[0].backup[]? | .archive.start[0:8]] | last // ""')
    if [ -n "$newest" ] && [ "$((0x$newest))" -ge "$((0x$timeline))" ]; then
        echo "{BACKUP_CURRENT_MARKER}"
        exit 0
    fi
    kind=full
fi

# pgBackRest checks the timeline of the backup's first WAL against pg_control, and a
# backup started right after a promotion can fail that check ([058]) until a checkpoint
# on the new timeline has completed (pgbackrest#1816, #2547). CHECKPOINT waits for a
# checkpoint that starts after it, so pg_control is current before the backup begins.
if [ "$({psql} -c 'SELECT timeline_id FROM pg_control_checkpoint()')" != "$((0x$timeline))" ]; then
    {psql} -c CHECKPOINT >/dev/null
fi
{_backup_commands(s)}
{b.command("check")}
"""


def _backup_commands(s: BackupJobSettings) -> str:
    """The backup itself: from a streaming standby when the node has peers, else from here."""
    b = s.backup
    backup = f'{b.command("backup")} --type="$kind"'
    if not b.peers:
        return backup
    psql = _job_psql(s)
    return f"""streaming=$({psql} -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
if [ "$streaming" -gt 0 ]; then
    echo "{STANDBY_BACKUP_MARKER}"
    code=0
    {backup} --backup-standby || code=$?
    if [ "$code" = {DB_CONNECT_ERROR} ]; then
        echo "{STANDBY_UNREACHABLE_MARKER}"
        {backup}
    elif [ "$code" != 0 ]; then
        exit "$code"
    fi
else
    {backup}
fi"""


# Minutes between `ensure` runs: how soon after a promotion or restore a new backup starts.
ENSURE_EVERY_MIN = 5


def render_crontab(full: str, diff: str, job_path: str) -> str:
    """The crontab supercronic runs: full and diff backups, and the `ensure` check."""
    return (
        "# Rendered by hastack. Times are UTC.\n"
        f"{full} {job_path} full\n"
        f"{diff} {job_path} diff\n"
        f"*/{ENSURE_EVERY_MIN} * * * * {job_path} ensure\n"
    )
