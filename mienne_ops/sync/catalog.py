"""What NetSuite says about items: SKU -> internal id, kits and their components.

Read once per run with SuiteQL (a few pages), never per order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mienne_ops.integrations.netsuite import NetSuiteClient

ITEMS_QUERY = (
    "SELECT i.id, i.itemid, i.itemtype, i.isinactive FROM item i "
    "WHERE i.itemtype IN ('InvtPart', 'Kit', 'Assembly', 'NonInvtPart', 'Payment', 'Discount') ORDER BY i.id"
)

KIT_MEMBERS_QUERY = (
    "SELECT p.itemid AS kit_sku, c.itemid AS component_sku, im.quantity, "
    "p.custitem_dcl_ship_components AS ship_components "
    "FROM itemMember im JOIN item p ON p.id = im.parentitem JOIN item c ON c.id = im.item "
    "WHERE p.itemtype = 'Kit' AND p.isinactive = 'F' ORDER BY p.itemid, im.linenumber"
)


@dataclass
class NetSuiteCatalog:
    item_ids: dict[str, int] = field(default_factory=dict)
    inactive: set[str] = field(default_factory=set)
    kits: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    # Kits DCL picks as components (their BOM says so); the others are stocked pre-packed.
    exploded_kits: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, netsuite: NetSuiteClient) -> NetSuiteCatalog:
        catalog = cls()
        for row in netsuite.suiteql(ITEMS_QUERY):
            sku = row.get("itemid")
            if not sku:
                continue
            if row.get("isinactive") == "T":
                catalog.inactive.add(sku)
                continue
            catalog.item_ids[sku] = int(row["id"])
        for row in netsuite.suiteql(KIT_MEMBERS_QUERY):
            kit = row["kit_sku"]
            catalog.kits.setdefault(kit, []).append((row["component_sku"], int(float(row["quantity"]))))
            if row.get("ship_components", "T") != "F":
                catalog.exploded_kits.add(kit)
        return catalog

    def exploded_kit_components(self) -> dict[str, list[tuple[str, int]]]:
        return {kit: parts for kit, parts in self.kits.items() if kit in self.exploded_kits}
