"""The demo traffic ships only what DCL can ship: never more packages (tracking numbers) than units,
kits counted as their components, and never from a listing older than the order (driven step by
step here; the simulator's thread never runs)."""

from __future__ import annotations

import random

import httpx
import pytest

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.dcl import DclError
from mienne_ops.sandbox.traffic import TrafficSimulator, units_left
from mienne_ops_tests.support import dcl_order

AUTH = (credentials.DCL["username"], credentials.DCL["password"])


class Always(random.Random):
    """Every draw picks the rarest branch: a partial shipment where it can, else two packages."""

    def random(self) -> float:
        return 0.0


def place(sandbox, orders: list[dict]) -> None:
    answer = httpx.post(
        f"{sandbox.url}/dcl/api/v1/batches", json={"allow_partial": False, "orders": orders}, auth=AUTH
    )
    assert answer.status_code == 201, answer.text


@pytest.fixture
def items(sandbox) -> list[str]:
    return sorted(sandbox.hub.system("dcl").items)[:6]


def random_orders(items: list[str], rng: random.Random, count: int) -> list[dict]:
    orders = []
    for index in range(count):
        picked = rng.sample(items, rng.choice((1, 1, 2, 3)))
        lines = [
            {"line_number": n, "item_number": item, "quantity": rng.choice((1, 1, 2, 3))}
            for n, item in enumerate(picked, start=1)
        ]
        if rng.random() < 0.3:  # a kit: one unit of it is two components at DCL
            lines.append(
                {
                    "line_number": len(lines) + 1,
                    "item_number": "MN-KIT-TRAFFIC",
                    "quantity": 1,
                    "bundle_lines": [
                        {"item_number": items[0], "quantity": 1},
                        {"item_number": items[1], "quantity": 1},
                    ],
                }
            )
        orders.append(dcl_order(f"TRAFFIC-{index}", lines, carrier="UPS"))
    return orders


def test_the_fake_refuses_more_tracking_numbers_than_units(sandbox, items):
    one_unit = [{"line_number": 1, "item_number": items[0], "quantity": 1}]
    place(sandbox, [dcl_order("ONE-UNIT", one_unit, carrier="UPS")])
    with pytest.raises(DclError, match="More tracking numbers than units shipped"):
        sandbox.hub.system("dcl").ship_order("ONE-UNIT", tracking_numbers=["1ZA", "1ZB"])


def test_every_order_ships_whole_in_packages_it_can_fill(sandbox, items):
    place(sandbox, random_orders(items, random.Random(12), 40))
    dcl = sandbox.hub.system("dcl")
    simulator = TrafficSimulator(sandbox.hub, ship_after_seconds=0)
    simulator.rng = Always()
    for _ in range(4):  # a partial shipment, then the rest: at most two passes are needed
        for order in dcl.list_orders():
            if int(order["order_stage"]) < 60:
                simulator._ship(order)  # raises on an impossible shipment
    shipped = dcl.list_orders()
    assert all(int(order["order_stage"]) == 60 for order in shipped)
    doubled = [s for o in shipped for s in o["shipments"] if len(s["packages"]) == 2]
    assert doubled  # the two-package branch ran, each time on a shipment of two units or more
    for shipment in doubled:
        assert all(package["shipped_items"] for package in shipment["packages"])


def test_a_listing_older_than_the_order_ships_only_what_is_left(sandbox, items):
    lines = [
        {"line_number": 1, "item_number": items[0], "quantity": 1},
        {"line_number": 2, "item_number": items[1], "quantity": 1},
    ]
    place(sandbox, [dcl_order("STALE-1", lines, carrier="UPS")])
    dcl = sandbox.hub.system("dcl")
    (stale,) = dcl.list_orders()
    dcl.ship_order("STALE-1", lines=[{"line_number": 1, "quantity": 1}])  # shipped since the listing
    simulator = TrafficSimulator(sandbox.hub, ship_after_seconds=0)
    simulator.rng = Always()
    simulator._ship(stale)  # the listing says two units; one is left: one package
    (order,) = dcl.list_orders()
    assert [len(s["packages"]) for s in order["shipments"]] == [1, 1]
    assert int(order["order_stage"]) == 60


def test_units_left_counts_a_kit_as_its_components():
    kit = {"quantity": 2, "quantity_shipped": 1, "bundle_lines": [{"quantity": 1}, {"quantity": 2}]}
    plain = {"quantity": 3, "quantity_shipped": 3}
    assert units_left({"lines": [kit, plain]}) == 3
