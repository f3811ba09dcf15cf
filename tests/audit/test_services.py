import re

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


def test_audit_actions_read_as_words_not_codes():
    events = [
        AuditEvent(action=action, subject_type=subject, subject_id="1")
        for action, subject in (
            ("smart.launch", "smart_registration"),
            ("cds_card.overridden", "cds_card"),
            ("protocol_version.signature_refused", "protocol_version"),
            ("protocol_version.draft_started", "protocol_version"),
        )
    ]
    assert [(e.action_words, e.subject_words) for e in events] == [
        ("opened from the EHR (SMART launch)", "EHR registration (SMART) 1"),
        ("EHR card overridden by the clinician", "EHR card 1"),
        ("approval refused: wrong password", "protocol version 1"),
        ("draft started", "protocol version 1"),
    ]


def test_audit_admin_lists_and_filters_actions_in_words(client, pharmacist):
    audit_record(action="smart.launch", subject_type="smart_registration", subject_id=3, actor=pharmacist)
    audit_record(action="cds_card.issued", subject_type="cds_card", subject_id="c-1", actor=pharmacist)
    client.force_login(pharmacist)
    html = client.get("/admin/audit/auditevent/").content.decode()
    shown = re.sub(r"<[^>]+>", " ", html)
    assert re.findall(r'<td class="field-what">([^<]*)</td>', html) == [
        "EHR card sent",
        "opened from the EHR (SMART launch)",
    ]
    assert (shown.count("EHR card sent"), shown.count("opened from the EHR (SMART launch)")) == (2, 2)  # list, filter
    assert ("smart.launch" in shown, "cds_card.issued" in shown, "smart_registration" in shown) == (False, False, False)
    filtered = client.get("/admin/audit/auditevent/?action=smart.launch").content.decode()
    assert re.findall(r'<td class="field-what">([^<]*)</td>', filtered) == ["opened from the EHR (SMART launch)"]
