"""Guards that model methods cannot cover: many-to-many edits on a frozen version's steps."""

from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from protocols.models import FROZEN_STATUSES, DosingStep, ProtocolVersion, PublishedVersionIsImmutable


@receiver(m2m_changed, sender=DosingStep.citations.through)
def refuse_citation_change_on_frozen_step(sender, instance, action, **kwargs):
    if not action.startswith("pre_"):
        return
    if isinstance(instance, DosingStep):
        frozen = ProtocolVersion.objects.filter(pk=instance.version_id, status__in=FROZEN_STATUSES).exists()
    else:  # Changed from the Reference side: check every step named.
        step_ids = kwargs.get("pk_set") or set()
        frozen = DosingStep.objects.filter(pk__in=step_ids, version__status__in=FROZEN_STATUSES).exists()
    if frozen:
        raise PublishedVersionIsImmutable("Citations of a published protocol version cannot be changed.")
