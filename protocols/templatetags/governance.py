"""The admin home's worklist: what awaits the signed-in pharmacist."""

from django import template

from protocols.selectors.governance import protocol_worklist
from protocols.services import APPROVE_PERMISSION

register = template.Library()


@register.simple_tag(takes_context=True)
def worklist(context):
    user = context["request"].user
    if not user.has_perm("protocols.view_protocolversion"):
        return None
    return protocol_worklist(user=user, can_approve=user.has_perm(APPROVE_PERMISSION))
