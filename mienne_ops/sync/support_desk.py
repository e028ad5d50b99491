"""One face for the two helpdesks: read a ticket's requester and words, answer it, note on it.

Mienne answers most customers in Gorgias and some brands in Zendesk; flow F (and the support agent
after it) only needs four things from either: who wrote, what they wrote and tagged, a public reply
and an internal note. Every write carries a key derived from the request, and both clients skip a
write whose key is already on the ticket, so a re-run never answers a customer twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from mienne_ops.domain.service_requests import TicketRef
from mienne_ops.errors import PermanentError
from mienne_ops.integrations.gorgias import GorgiasClient
from mienne_ops.integrations.zendesk import ZendeskClient

GORGIAS, ZENDESK = "gorgias", "zendesk"


@dataclass(frozen=True)
class TicketView:
    ticket: TicketRef
    requester_email: str | None
    subject: str
    text: str  # everything the customer wrote, oldest first
    tags: frozenset[str]


@dataclass
class SupportDesk:
    gorgias: GorgiasClient | None = None
    zendesk: ZendeskClient | None = None

    def read(self, ticket: TicketRef) -> TicketView:
        if ticket.system == GORGIAS:
            return self._read_gorgias(ticket)
        if ticket.system == ZENDESK:
            return self._read_zendesk(ticket)
        raise _unknown_desk(ticket)

    def reply(self, ticket: TicketRef, text: str, *, key: str) -> None:
        """A public answer the customer receives."""
        if ticket.system == GORGIAS:
            self._gorgias().post_public_reply(int(ticket.id), text, external_id=key)
        elif ticket.system == ZENDESK:
            self._zendesk().add_comment(int(ticket.id), text, public=True, dedupe_key=key)
        else:
            raise _unknown_desk(ticket)

    def note(self, ticket: TicketRef, text: str, *, key: str) -> None:
        """An internal note only the support team sees (record ids, why something failed)."""
        if ticket.system == GORGIAS:
            self._gorgias().post_internal_note(int(ticket.id), text, external_id=key)
        elif ticket.system == ZENDESK:
            self._zendesk().add_comment(int(ticket.id), text, public=False, dedupe_key=key)
        else:
            raise _unknown_desk(ticket)

    def tag(self, ticket: TicketRef, tags: list[str]) -> None:
        if ticket.system == GORGIAS:
            self._gorgias().add_tags(int(ticket.id), tags)
        elif ticket.system == ZENDESK:
            self._zendesk().add_tags(int(ticket.id), tags)

    def _read_gorgias(self, ticket: TicketRef) -> TicketView:
        client = self._gorgias()
        found = client.ticket(int(ticket.id))
        written = [m.body_text or "" for m in client.messages(found.id) if not m.from_agent and m.public]
        return TicketView(
            ticket=ticket,
            requester_email=found.customer_email,
            subject=found.subject or "",
            text="\n".join(written),
            tags=frozenset(tag.lower() for tag in found.tags),
        )

    def _read_zendesk(self, ticket: TicketRef) -> TicketView:
        client = self._zendesk()
        found = client.ticket(int(ticket.id))
        comments = client.comments(found.id)
        written = [c.body for c in comments if c.public and c.author_id == found.requester_id]
        return TicketView(
            ticket=ticket,
            requester_email=found.requester_email,
            subject=found.subject or "",
            text="\n".join(written),
            tags=frozenset(tag.lower() for tag in found.tags),
        )

    def _gorgias(self) -> GorgiasClient:
        if self.gorgias is None:
            raise PermanentError("Gorgias is not configured", system=GORGIAS, operation="ticket")
        return self.gorgias

    def _zendesk(self) -> ZendeskClient:
        if self.zendesk is None:
            raise PermanentError("Zendesk is not configured", system=ZENDESK, operation="ticket")
        return self.zendesk


def _unknown_desk(ticket: TicketRef) -> PermanentError:
    return PermanentError(f"no helpdesk called {ticket.system}", system="flow_f", operation="ticket")
