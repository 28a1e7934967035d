"""iCalendar (RFC 5545) export of the reception-day feed, and its HTTP endpoint.

``GET /rosters/{unit path}.ics?from=YYYY-MM-DD&to=YYYY-MM-DD`` with the usual
credentials (a bearer token or an API key, ``backend/web/auth.py``) answers
``text/calendar``: the announced reception days at that unit and below (default
window: today and the next 90 days); a unit that does not exist in the caller's
city (another city's too) is 404. The same text is the GraphQL field
``receptionCalendar``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from backend.authz.enforcer import require
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import NotFound
from backend.rosters.access import tenant_zone, users_by_ids
from backend.rosters.models import DutyShift
from backend.rosters.people import people_by_ids
from backend.rosters.shifts import reception_announcements
from backend.tenants.models import User
from backend.tenants.service import unit_by_path

PRODID = "-//xinfang//duty rosters//ZH"
DEFAULT_DAYS = 90


def render_calendar(
    shifts: Sequence[DutyShift],
    leaders: dict,
    *,
    name: str,
    tz: ZoneInfo | None = None,
    people: dict | None = None,
) -> str:
    """One VEVENT per shift; the UID is stable, so subscribed clients update in place. The
    one on duty is the leader, or the named person (lawyer, counsellor, deputy)."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    if tz is not None:
        cal.add("x-wr-timezone", str(tz))
    for shift in shifts:
        leader: User | None = leaders.get(shift.leader_id)
        person = (people or {}).get(shift.person_id)
        who = leader.display_name if leader else person.name if person else ""
        event = Event()
        event.add("uid", f"{shift.id}@xinfang")
        event.add("dtstamp", shift.updated_at or now())
        event.add("dtstart", shift.starts_at)
        event.add("dtend", shift.ends_at)
        event.add("summary", f"{shift.title}：{who}".rstrip("："))
        event.add("description", f"{shift.unit_path} · {shift.kind} · {who}")
        if shift.location:
            event.add("location", shift.location)
        event.add("categories", [shift.kind])
        cal.add_component(event)
    return cal.to_ical().decode("utf-8")


async def reception_calendar(
    session, principal, *, unit_path: str, from_: date | None = None, to: date | None = None
) -> str:
    require(principal, "shift", "read")  # refused before anything is looked up
    v.date_range(from_, to)  # the pair as given: a reversed one is refused, whatever the unit
    if await unit_by_path(session, v.path(unit_path, "unitPath")) is None:
        raise NotFound(f"org unit {unit_path} not found")  # foreign units do not exist here
    tz = await tenant_zone(session, principal.tenant_id)
    start = from_ or now().astimezone(tz).date()
    end = to or start + timedelta(days=DEFAULT_DAYS)
    shifts = await reception_announcements(
        session, principal, from_=start, to=end, unit_path=unit_path
    )
    leaders = await users_by_ids(session, [s.leader_id for s in shifts if s.leader_id])
    staff = await people_by_ids(session, [s.person_id for s in shifts if s.person_id])
    return render_calendar(shifts, leaders, name=f"接访日程 {unit_path}", tz=tz, people=staff)
