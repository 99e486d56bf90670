"""Backup drills on real pgbackrest 2.45 and PostgreSQL 15 (loopback/backup_drills.py,
loopback/backup_standby.py, loopback/backup_patroni.py): point-in-time recovery after an
operator error, whole-cluster loss, a promotion (manual, and by Patroni) followed by a
restore past the switch, a repository copy without the passphrase, and a backup from the
standby under load. The 1 GB RTO figure is measured by `python -m bench backups`."""

from __future__ import annotations

from loopback import backup_drills, backup_patroni, backup_standby
from loopback.backup_patroni import loopback_patroni_backups
from loopback.backups import loopback_backups

# One archive push can take up to this long on a loaded CI box; the RPO bound is
# archive_timeout plus one push, plus the second of rounding in archive_timeout's timer.
TIMER_GRANULARITY_S = 1.0


def test_operator_error_restore_to_just_before_has_every_row_before_and_none_after(pgbackrest_installed):
    with loopback_backups(extra_flags=backup_drills.DRILL_FLAGS) as setup:
        result = backup_drills.operator_error(setup)
    assert result.committed_before_target >= backup_drills.ROWS_BEFORE
    assert result.rows_before_target_missing == 0
    assert result.rows_after_target_present == 0


def test_whole_cluster_loss_restores_latest_losing_at_most_archive_timeout_plus_one_push(pgbackrest_installed):
    with loopback_backups(replicas=1, extra_flags=backup_drills.DRILL_FLAGS) as setup:
        result = backup_drills.whole_cluster_loss(setup)
    assert result.acknowledged > backup_drills.WRITE_RATE_PER_S * result.archive_timeout_s
    assert result.rpo_s <= result.archive_timeout_s + result.push_s + TIMER_GRANULARITY_S
    assert result.rto_s > 0 and result.db_bytes > 0


def assert_restored_past_the_switch(result: backup_drills.TimelineSwitchResult) -> None:
    """The new primary archived on timeline 2 and backed up; the restore past the switch
    has every row committed by the target and none after, and promoted onto timeline 3."""
    assert result.promoted_timeline == 2 and result.new_timeline_archived
    assert result.backup_after_promotion
    assert result.committed_before_target >= backup_drills.ROWS_BEFORE
    assert result.rows_before_target_missing == 0
    assert result.rows_after_target_present == 0
    assert result.restored_timeline == 3


def test_after_a_manual_promotion_the_new_primary_archives_backs_up_and_restores_past_the_switch(pgbackrest_installed):
    with loopback_backups(replicas=1, extra_flags=backup_drills.DRILL_FLAGS) as setup:
        result = backup_drills.timeline_switch(setup)
    assert_restored_past_the_switch(result)


def test_a_repository_copy_without_the_passphrase_yields_nothing_readable(pgbackrest_installed):
    with loopback_backups() as setup:
        result = backup_drills.encryption(setup)
    assert result.files > 0
    assert result.unencrypted_files == []
    assert result.canary_found_in == []
    assert result.readable_without_passphrase == []
    assert result.restored_without_passphrase is False


def test_a_backup_from_the_streaming_standby_under_load_reads_the_standby_and_restores(pgbackrest_installed):
    """Real `pgbackrest server` on each node (mutual TLS), the rendered job on the primary."""
    with loopback_backups(replicas=1, extra_flags=backup_drills.DRILL_FLAGS) as setup:
        result = backup_standby.backup_from_standby(setup)
    assert result.from_standby_marker
    # Every relation file came from the standby's data dir; the primary gave only the
    # few files that are not replicated (and pg_control).
    assert result.standby_files > 100 and result.primary_relation_files == []
    assert result.standby_bytes > 10 * result.primary_bytes
    assert result.rows_during_backup > 0
    # With the standby's TLS server gone, the job still backs up, from the primary.
    assert result.fallback_marker
    assert result.fallback_standby_files == 0 and result.fallback_primary_files > 0
    # `latest` is the primary's diff on top of the standby's full: both restore.
    assert result.rows_acknowledged > backup_standby.ROWS_BEFORE_BACKUP
    assert result.rows_missing_after_restore == 0


def test_after_patroni_promotes_a_new_leader_it_archives_backs_up_and_restores_past_the_switch(pgbackrest_installed,
                                                                                                patroni_installed):
    """Real Patroni + etcd: archive_command in the DCS parameters, the leader SIGKILLed."""
    with loopback_patroni_backups() as (setup, cluster):
        result = backup_patroni.patroni_timeline_switch(setup, cluster)
    # The post_bootstrap hook created the stanza before the first segment was archived.
    assert result.archive_failures_before_switch == 0
    assert_restored_past_the_switch(result)
