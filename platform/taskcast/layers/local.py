"""A process's members per group: what every layer keeps locally and fans out to."""

from __future__ import annotations

from collections.abc import Container, Iterator

from ..delivery import Delivery
from .base import Member

__all__ = ["LocalGroups"]


class LocalGroups:
    """Members by group. ``add`` and ``discard`` say when a group gains its first member or loses
    its last, which is when a layer subscribes or unsubscribes."""

    def __init__(self) -> None:
        self._groups: dict[str, dict[str, Member]] = {}

    def add(self, group: str, member: Member) -> bool:
        """Add ``member``; true when the group had no member before."""
        members = self._groups.get(group)
        if members is None:
            self._groups[group] = {member.member_id: member}
            return True
        members[member.member_id] = member
        return False

    def discard(self, group: str, member: Member) -> bool:
        """Remove ``member``; true when that was the group's last member."""
        members = self._groups.get(group)
        if members is None or members.pop(member.member_id, None) is None:
            return False
        if members:
            return False
        del self._groups[group]
        return True

    def deliver(self, group: str, delivery: Delivery, skip: Container[str] = ()) -> None:
        """Hand ``delivery`` to every member of ``group`` but those whose ids are in ``skip``."""
        members = self._groups.get(group)
        if not members:
            return
        if skip:
            for member_id, member in tuple(members.items()):
                if member_id not in skip:
                    member.deliver(delivery)
        else:
            for member in tuple(members.values()):
                member.deliver(delivery)

    def members(self, group: str) -> dict[str, Member]:
        """The members of ``group`` by id (empty when it has none); do not change it."""
        return self._groups.get(group) or {}

    def count(self, group: str) -> int:
        return len(self._groups.get(group, ()))

    def __len__(self) -> int:
        return len(self._groups)

    def __contains__(self, group: str) -> bool:
        return group in self._groups

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._groups))

    def clear(self) -> None:
        self._groups.clear()
