"""The seed catalog every sandbox system starts from after `POST /_sandbox/reset`.

Deterministic (fixed random seed), so tests and benchmarks see the same world every time: a few
hundred SKUs with their NetSuite item ids and Shopify product / variant / inventory-item ids, kits
(bundles) whose bills of materials have 2–4 components with quantities above 1, two DCL warehouses
mapped to NetSuite and Shopify locations, ship methods, and customers. Served as JSON by
`GET /_sandbox/catalog`.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

CATEGORIES = ["SERUM", "CREAM", "CLEANSER", "TONER", "MASK", "OIL", "BALM", "MIST", "SCRUB", "TOOL"]


@dataclass(frozen=True)
class Sku:
    sku: str
    title: str
    price: str  # decimal string, as Shopify sends money
    grams: int
    netsuite_item_id: int
    shopify_product_id: int
    shopify_variant_id: int
    shopify_inventory_item_id: int
    item_type: str = "InvtPart"  # NetSuite itemtype: InvtPart or Kit
    active: bool = True


@dataclass(frozen=True)
class BomLine:
    component_sku: str
    quantity: int


@dataclass(frozen=True)
class Bundle:
    sku: str
    components: tuple[BomLine, ...]
    # True: DCL receives the components (bundle_lines); False: DCL stocks the kit pre-packed.
    ship_as_components: bool = True


@dataclass(frozen=True)
class Location:
    code: str  # DCL warehouse code
    name: str
    netsuite_location_id: int
    shopify_location_id: int


@dataclass(frozen=True)
class ShipMethod:
    shopify_code: str
    title: str
    netsuite_ship_method_id: int
    dcl_carrier: str
    dcl_service: str


@dataclass(frozen=True)
class Customer:
    email: str
    first_name: str
    last_name: str
    netsuite_customer_id: int | None
    shopify_customer_id: int
    address: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceItem:
    """A NetSuite non-stock item the sales-order mapping posts to (tax, gift-card payment, discount)."""

    role: str
    itemid: str
    netsuite_item_id: int
    item_type: str  # NetSuite itemtype: NonInvtPart, Payment, Discount


SERVICE_ITEMS = (
    ServiceItem("tax", "SHOPIFY-TAX", 900, "NonInvtPart"),
    ServiceItem("gift_card", "SHOPIFY-GIFT-CARD", 901, "Payment"),
    ServiceItem("discount", "SHOPIFY-DISCOUNT", 902, "Discount"),
    ServiceItem("tip", "SHOPIFY-TIP", 903, "NonInvtPart"),
    ServiceItem("duty", "SHOPIFY-DUTIES", 904, "NonInvtPart"),
    ServiceItem("gift_card_sale", "SHOPIFY-GIFT-CARD-SALE", 905, "NonInvtPart"),
    ServiceItem("rounding", "SHOPIFY-ROUNDING", 906, "NonInvtPart"),
    ServiceItem("refund_adjustment", "REFUND-ADJUSTMENT", 907, "NonInvtPart"),
    ServiceItem("shipping_refund", "SHIPPING-REFUND", 908, "NonInvtPart"),
)


@dataclass(frozen=True)
class Catalog:
    skus: tuple[Sku, ...]
    bundles: tuple[Bundle, ...]
    locations: tuple[Location, ...]
    ship_methods: tuple[ShipMethod, ...]
    customers: tuple[Customer, ...]
    service_items: tuple[ServiceItem, ...] = SERVICE_ITEMS

    def by_sku(self) -> dict[str, Sku]:
        return {s.sku: s for s in self.skus}

    def bundle_for(self, sku: str) -> Bundle | None:
        return next((b for b in self.bundles if b.sku == sku), None)

    def sellable_skus(self) -> list[Sku]:
        """Active SKUs whose bundle (if any) has only active components."""
        by_sku = self.by_sku()
        sellable = []
        for item in self.skus:
            if not item.active:
                continue
            bundle = self.bundle_for(item.sku)
            if bundle and not all(by_sku[c.component_sku].active for c in bundle.components):
                continue
            sellable.append(item)
        return sellable

    def to_json(self) -> dict[str, Any]:
        return {
            "skus": [asdict(s) for s in self.skus],
            "bundles": [
                {
                    "sku": b.sku,
                    "ship_as_components": b.ship_as_components,
                    "components": [asdict(c) for c in b.components],
                }
                for b in self.bundles
            ],
            "locations": [asdict(x) for x in self.locations],
            "ship_methods": [asdict(x) for x in self.ship_methods],
            "customers": [asdict(x) for x in self.customers],
            "service_items": [asdict(x) for x in self.service_items],
        }


FIRST_NAMES = ["Ava", "Noah", "Mia", "Liam", "Zoe", "Eli", "Ines", "Omar", "Lena", "Kai", "Rosa", "Theo"]
LAST_NAMES = ["Garcia", "Nguyen", "Smith", "Okafor", "Rossi", "Kim", "Dubois", "Patel", "Haddad", "Berg"]
CITIES = [
    ("Austin", "TX", "78701", "US"),
    ("Portland", "OR", "97205", "US"),
    ("Brooklyn", "NY", "11201", "US"),
    ("Denver", "CO", "80202", "US"),
    ("Toronto", "ON", "M5V 2T6", "CA"),
    ("Vancouver", "BC", "V6B 1A1", "CA"),
    ("Chicago", "IL", "60601", "US"),
    ("Miami", "FL", "33101", "US"),
]


@lru_cache(maxsize=4)
def build_catalog(sku_count: int = 300, bundle_count: int = 24, customer_count: int = 60) -> Catalog:
    rng = random.Random(20261127)
    skus: list[Sku] = []
    for index in range(sku_count):
        category = CATEGORIES[index % len(CATEGORIES)]
        skus.append(
            Sku(
                sku=f"MN-{category}-{index + 1:03d}",
                title=f"Mienne {category.title()} No. {index + 1}",
                price=str(Decimal(rng.randrange(900, 8900)) / 100),
                grams=rng.randrange(50, 600),
                netsuite_item_id=1000 + index,
                shopify_product_id=7_100_000_000_000 + index,
                shopify_variant_id=41_000_000_000_000 + index,
                shopify_inventory_item_id=43_000_000_000_000 + index,
                # A couple of discontinued SKUs exercise the inactive-component rules.
                active=index not in (sku_count - 1, sku_count - 2),
            )
        )
    bundles: list[Bundle] = []
    component_pool = [s for s in skus[: sku_count - 2]]
    for index in range(bundle_count):
        size = 2 + index % 3
        members = rng.sample(component_pool, size)
        lines = tuple(
            BomLine(m.sku, 2 + rng.randrange(3) if j == 0 else 1 + rng.randrange(3))
            for j, m in enumerate(members)
        )
        kit_index = sku_count + index
        kit = Sku(
            sku=f"MN-KIT-{index + 1:02d}",
            title=f"Mienne Ritual Kit {index + 1}",
            price=str(Decimal(rng.randrange(4900, 19900)) / 100),
            grams=sum(300 for _ in lines),
            netsuite_item_id=1000 + kit_index,
            shopify_product_id=7_100_000_000_000 + kit_index,
            shopify_variant_id=41_000_000_000_000 + kit_index,
            shopify_inventory_item_id=43_000_000_000_000 + kit_index,
            item_type="Kit",
        )
        skus.append(kit)
        bundles.append(Bundle(sku=kit.sku, components=lines, ship_as_components=index % 4 != 3))
    # One kit built on a discontinued component: never sellable, flagged by bundle math.
    discontinued = skus[sku_count - 1]
    broken_kit = Sku(
        sku="MN-KIT-LEGACY",
        title="Mienne Legacy Kit",
        price="59.00",
        grams=600,
        netsuite_item_id=1000 + sku_count + bundle_count,
        shopify_product_id=7_100_000_000_000 + sku_count + bundle_count,
        shopify_variant_id=41_000_000_000_000 + sku_count + bundle_count,
        shopify_inventory_item_id=43_000_000_000_000 + sku_count + bundle_count,
        item_type="Kit",
    )
    skus.append(broken_kit)
    bundles.append(Bundle(broken_kit.sku, (BomLine(skus[0].sku, 2), BomLine(discontinued.sku, 1))))

    locations = (
        Location("FR", "DCL Fremont", netsuite_location_id=1, shopify_location_id=60_000_000_001),
        Location("LA", "DCL Los Angeles", netsuite_location_id=2, shopify_location_id=60_000_000_002),
    )
    ship_methods = (
        ShipMethod("standard", "Standard Shipping", 101, "UPS", "GROUND"),
        ShipMethod("express", "Express Shipping", 102, "FEDEX", "2DAY"),
        ShipMethod("overnight", "Overnight", 103, "FEDEX", "OVERNIGHT"),
        ShipMethod("canada-post", "Canada Post Expedited", 104, "CANADAPOST", "EXPEDITED"),
        ShipMethod("usps-priority", "USPS Priority Mail", 105, "USPS", "PRIORITY"),
    )
    customers = []
    for index in range(customer_count):
        first = FIRST_NAMES[index % len(FIRST_NAMES)]
        last = LAST_NAMES[(index * 7) % len(LAST_NAMES)]
        city, province, zip_code, country = CITIES[index % len(CITIES)]
        customers.append(
            Customer(
                email=f"{first.lower()}.{last.lower()}{index}@example.com",
                first_name=first,
                last_name=last,
                # Half the customers already exist in NetSuite; the others are created on first order.
                netsuite_customer_id=5000 + index if index % 2 == 0 else None,
                shopify_customer_id=6_200_000_000_000 + index,
                address={
                    "address1": f"{100 + index} Market St",
                    "address2": "",
                    "city": city,
                    "province_code": province,
                    "zip": zip_code,
                    "country_code": country,
                    "phone": f"+1 555 01{index:02d}",
                },
            )
        )
    return Catalog(tuple(skus), tuple(bundles), locations, ship_methods, tuple(customers))
