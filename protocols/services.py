"""Writes to protocol data. Views, admin actions and the seed loader call these; nothing else writes."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from protocols.models import Protocol, ProtocolVersion, VersionStatus


@transaction.atomic
def protocol_version_publish(
    *,
    version: ProtocolVersion,
    approved_by: AbstractBaseUser | None,
    approval_source: str = "",
    now: datetime | None = None,
) -> ProtocolVersion:
    """Publish `version` and retire whatever was published before it, in one transaction.

    Callers check who may approve (two-person rule) before calling; this enforces only what
    must always hold: a version is published once, and one version per protocol is live.
    """
    if approved_by is None and not approval_source:
        raise ValueError("A version is published by an approving user or a named approval source.")
    now = now or timezone.now()
    # Lock the protocol so two concurrent publishes cannot both retire and both publish.
    Protocol.objects.select_for_update().get(pk=version.protocol_id)
    current = ProtocolVersion.objects.select_for_update().get(pk=version.pk)
    if current.status in (VersionStatus.PUBLISHED, VersionStatus.RETIRED):
        raise ValueError(f"{current} has already been published.")
    ProtocolVersion.objects.filter(protocol_id=version.protocol_id, status=VersionStatus.PUBLISHED).update(
        status=VersionStatus.RETIRED, retired_at=now
    )
    version.status = VersionStatus.PUBLISHED
    version.published_at = now
    version.approved_by = approved_by
    version.approval_source = approval_source
    version.save()
    return version
