import pytest

from audit.models import AuditEvent
from audit.services import audit_record
from tests.factories import AuditEventFactory

pytestmark = pytest.mark.integration


def test_audit_record_stores_actor_action_and_reason(pharmacist):
    event = audit_record(
        action="protocol_version.rejected",
        subject_type="protocol_version",
        subject_id=7,
        actor=pharmacist,
        reason="cap typo",
    )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.actor, stored.action, stored.subject_id, stored.reason) == (
        pharmacist,
        "protocol_version.rejected",
        "7",
        "cap typo",
    )


def test_audit_event_is_append_only(db):
    event = AuditEventFactory()
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(reason="changed")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).reason == ""
