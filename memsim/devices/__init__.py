"""Memristive device models: statistical (PCM, RRAM, ideal) and physical (VTEAM)."""

from __future__ import annotations

from pathlib import Path

from memsim.cards import CardError, list_cards, read_card
from memsim.devices.base import Device, DeviceState, NonIdealities
from memsim.devices.statistical import StatisticalDevice

__all__ = ["Device", "DeviceState", "NonIdealities", "StatisticalDevice", "list_devices",
           "load_device"]


_FAMILIES = ("statistical", "vteam")


def _from_card(family: str, name: str, data: dict) -> Device:
    if family == "statistical":
        return StatisticalDevice.from_card(name, data)
    from memsim.devices.physical import PhysicalDevice  # numba compiles on first use

    return PhysicalDevice.from_card(name, data)


def load_device(name_or_path: str | Path) -> Device:
    """Load a device from its card: a name in ``devices/`` or the path of a TOML card.

    Raises ``ValueError`` (a :class:`memsim.cards.CardError`) naming the card and the field
    when the card is unknown, incomplete or out of range.
    """
    name, data = read_card(name_or_path, "devices")
    card = data.get("card")
    family = card.get("family") if isinstance(card, dict) else None
    if family not in _FAMILIES:
        raise CardError(
            f"device card {name!r}: card.family = {family!r} is unknown; allowed: "
            f"{list(_FAMILIES)}"
        )
    return _from_card(family, name, data)


def list_devices() -> list[str]:
    """Names of the device cards that ship with memsim."""
    return list_cards("devices")
