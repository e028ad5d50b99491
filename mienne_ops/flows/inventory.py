"""Flow E in Dagster: inventory and bundle availability as assets partitioned by warehouse.

One asset group, ``inventory``, drawn as a graph in the UI::

    bundle_boms ───────────────┐
    netsuite_inventory_levels ─┴─> bundle_availability ─> available_to_sell ─> shopify_inventory_push
    dcl_inventory_levels ───────────────────────────────────────────────> inventory_reconciliation <─┘

Partitions are the warehouses (``FR``, ``LA``: DCL warehouse = NetSuite location = Shopify location).
Launching a partition syncs that warehouse now; a backfill of both is a full re-sync (one run per
warehouse, serialised by the flow tag so the API budgets hold). Inventory is state, not events, so
there is no time dimension: history lives in the ledger's snapshots and change log, and the ledger's
guarded upserts make sure a run never pushes a quantity older than one already pushed.

Automation: `inventory_sync_schedule` runs the sync every 15 minutes (both warehouses), and
`inventory_first_sync_sensor` once per warehouse as soon as an instance starts (a new `make dev`);
`bundle_availability`, `available_to_sell` and `shopify_inventory_push` also carry
`AutomationCondition.eager()`, so whenever their inputs are materialized (a manual launch of the
levels, the daily reconciliation's fresh reads) they follow through `inventory_automation_sensor`,
not through a time offset. `inventory_reconciliation_schedule` builds the report daily.
"""

from datetime import UTC, datetime

import dagster as dg

from mienne_ops.business_rules import BusinessRules
from mienne_ops.domain.inventory import low_stock
from mienne_ops.domain.inventory_report import Verdict, inventory_report
from mienne_ops.domain.reports import markdown_table
from mienne_ops.flows.common import flow_tags, metadata_table
from mienne_ops.integrations.dcl import DclResource
from mienne_ops.integrations.netsuite import NetSuiteResource
from mienne_ops.integrations.shopify import ShopifyResource
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.sync.inventory import InventorySettings, InventorySync, PushReport

GROUP = "inventory"
LOCATIONS = ("FR", "LA")
RUN_TAGS = flow_tags("E")
TOP_ROWS = 50

inventory_locations = dg.StaticPartitionsDefinition(list(LOCATIONS))
eager = dg.AutomationCondition.eager()


class InventoryConfig(dg.Config):
    """Optional narrowing of a run (the defaults are what the schedule runs)."""

    skus: list[str] = []
    # Read every Shopify level first (CAS baseline for all items); otherwise the last push is.
    read_shopify: bool = False
    # The moment the NetSuite / DCL read stands for (ISO 8601); empty = now. A replay with an older
    # moment can never overwrite fresher data.
    as_of: str = ""

    def moment(self) -> datetime:
        if not self.as_of:
            return datetime.now(UTC)
        parsed = datetime.fromisoformat(self.as_of)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def make_sync(
    ledger: LedgerResource,
    rules: BusinessRules,
    netsuite: NetSuiteResource | None = None,
    dcl: DclResource | None = None,
    shopify: ShopifyResource | None = None,
) -> InventorySync:
    return InventorySync(
        netsuite.client if netsuite else None,
        dcl.client if dcl else None,
        shopify.client if shopify else None,
        ledger.ledger,
        InventorySettings.from_rules(rules),
    )


# -- sources --------------------------------------------------------------------------------------
@dg.asset(
    group_name=GROUP,
    partitions_def=inventory_locations,
    pool="netsuite_api",
    kinds={"netsuite"},
    description="NetSuite available per SKU at the warehouse (SuiteQL aggregateItemLocation, 1,000/page)",
)
def netsuite_inventory_levels(
    context: dg.AssetExecutionContext,
    config: InventoryConfig,
    netsuite: NetSuiteResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.MaterializeResult:
    sync = make_sync(ledger, rules, netsuite=netsuite)
    saved = sync.read_netsuite(context.partition_key, config.moment(), config.skus)
    return dg.MaterializeResult(
        metadata={
            "skus": dg.MetadataValue.int(saved.rows),
            "changed": dg.MetadataValue.int(saved.changed),
            "stale_rows_ignored": dg.MetadataValue.int(saved.stale),
            "as_of": dg.MetadataValue.text(config.moment().isoformat()),
            "dagster/row_count": dg.MetadataValue.int(saved.rows),
        }
    )


@dg.asset(
    group_name=GROUP,
    partitions_def=inventory_locations,
    pool="dcl_api",
    kinds={"dcl"},
    description="DCL available per item in the warehouse (GET /items, inventory_type = warehouse)",
)
def dcl_inventory_levels(
    context: dg.AssetExecutionContext,
    config: InventoryConfig,
    dcl: DclResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.MaterializeResult:
    sync = make_sync(ledger, rules, dcl=dcl)
    saved = sync.read_dcl(context.partition_key, config.moment(), config.skus)
    return dg.MaterializeResult(
        metadata={
            "items": dg.MetadataValue.int(saved.rows),
            "changed": dg.MetadataValue.int(saved.changed),
            "stale_rows_ignored": dg.MetadataValue.int(saved.stale),
            "dagster/row_count": dg.MetadataValue.int(saved.rows),
        }
    )


@dg.asset(
    group_name=GROUP,
    partitions_def=inventory_locations,
    pool="netsuite_api",
    kinds={"netsuite"},
    description="Kit BOMs from NetSuite itemMember (the same in every warehouse; read per run)",
)
def bundle_boms(
    ledger: LedgerResource, rules: BusinessRules, netsuite: NetSuiteResource
) -> dg.MaterializeResult:
    kits, inactive = make_sync(ledger, rules, netsuite=netsuite).read_boms()
    return dg.MaterializeResult(
        metadata={
            "kits": dg.MetadataValue.int(len(kits)),
            "bom_lines": dg.MetadataValue.int(sum(len(v) for v in kits.values())),
            "inactive_components": dg.MetadataValue.text(", ".join(sorted(inactive)) or "none"),
        }
    )


# -- derived --------------------------------------------------------------------------------------
@dg.asset(
    group_name=GROUP,
    partitions_def=inventory_locations,
    deps=[netsuite_inventory_levels, bundle_boms],
    automation_condition=eager,
    check_specs=[dg.AssetCheckSpec("no_flagged_bundles", asset="bundle_availability")],
    description="Kits buildable per warehouse: min over components of floor(available / quantity)",
)
def bundle_availability(
    context: dg.AssetExecutionContext, ledger: LedgerResource, rules: BusinessRules
) -> dg.MaterializeResult:
    results = make_sync(ledger, rules).compute_bundles(context.partition_key)
    flagged = [
        {"kit": r.sku, "flag": r.flag, "component": r.detail or ""} for r in results if r.flag is not None
    ]
    return dg.MaterializeResult(
        metadata={
            "kits": dg.MetadataValue.int(len(results)),
            "kits_at_zero": dg.MetadataValue.int(sum(1 for r in results if r.available == 0)),
            "flagged": dg.MetadataValue.int(len(flagged)),
            "flagged_kits": metadata_table(
                flagged[:TOP_ROWS], [("kit", "string"), ("flag", "string"), ("component", "string")]
            ),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="no_flagged_bundles",
                passed=not flagged,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"{len(flagged)} kit(s) at 0 because of a missing or inactive component",
                metadata={"flagged": dg.MetadataValue.int(len(flagged))},
            )
        ],
    )


@dg.asset(
    group_name=GROUP,
    partitions_def=inventory_locations,
    deps=[netsuite_inventory_levels, bundle_availability],
    automation_condition=eager,
    description="What Shopify should show: NetSuite available − in-flight Shopify orders − safety buffer",
)
def available_to_sell(
    context: dg.AssetExecutionContext, ledger: LedgerResource, rules: BusinessRules
) -> dg.MaterializeResult:
    rows = make_sync(ledger, rules).compute_ats(context.partition_key)
    settings = InventorySettings.from_rules(rules)
    low = low_stock(rows.values(), settings.low_stock_threshold)
    return dg.MaterializeResult(
        metadata={
            "skus": dg.MetadataValue.int(len(rows)),
            "sellable_units": dg.MetadataValue.int(sum(r.available for r in rows.values())),
            "in_flight_units": dg.MetadataValue.int(sum(r.in_flight for r in rows.values())),
            "at_zero": dg.MetadataValue.int(sum(1 for r in rows.values() if r.available == 0)),
            "low_stock": dg.MetadataValue.int(len(low)),
            "dagster/row_count": dg.MetadataValue.int(len(rows)),
        }
    )


@dg.asset(
    group_name=GROUP,
    partitions_def=inventory_locations,
    deps=[available_to_sell],
    automation_condition=eager,
    pool="shopify_api",
    kinds={"shopify"},
    description="inventorySetQuantities of the changed quantities (CAS, @idempotent, <= 250 per call)",
)
def shopify_inventory_push(
    context: dg.AssetExecutionContext,
    config: InventoryConfig,
    shopify: ShopifyResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.MaterializeResult:
    sync = make_sync(ledger, rules, shopify=shopify)
    report = sync.push(context.partition_key, config.skus, read_shopify=config.read_shopify)
    context.log.info(report.summary())
    return dg.MaterializeResult(metadata=push_metadata(report))


def push_metadata(report: PushReport) -> dict[str, dg.MetadataValue]:
    failed = [{"sku": s, "code": c, "message": m[:200]} for s, c, m in report.failed]
    return {
        "pushed": dg.MetadataValue.int(report.pushed),
        "unchanged": dg.MetadataValue.int(report.unchanged),
        "stale_skipped": dg.MetadataValue.int(report.stale),
        "skipped": dg.MetadataValue.int(report.skipped),
        "raced": dg.MetadataValue.int(report.raced),
        "held_back_units": dg.MetadataValue.int(report.held_back),
        "failed": dg.MetadataValue.int(len(report.failed)),
        "calls": dg.MetadataValue.int(report.calls),
        "summary": dg.MetadataValue.text(report.summary()),
        "failures": dg.MetadataValue.md(markdown_table(failed[:TOP_ROWS], ["sku", "code", "message"])),
    }


# -- reconciliation -------------------------------------------------------------------------------
@dg.asset(
    group_name=GROUP,
    partitions_def=inventory_locations,
    deps=[netsuite_inventory_levels, dcl_inventory_levels, shopify_inventory_push],
    pool="shopify_api",
    check_specs=[
        dg.AssetCheckSpec("discrepancies_within_threshold", asset="inventory_reconciliation"),
        dg.AssetCheckSpec("no_low_stock", asset="inventory_reconciliation"),
    ],
    description="NetSuite vs DCL vs Shopify per SKU: markdown summary, worst discrepancies, checks",
)
def inventory_reconciliation(
    context: dg.AssetExecutionContext,
    shopify: ShopifyResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.MaterializeResult:
    location = context.partition_key
    sync = make_sync(ledger, rules, shopify=shopify)
    sync.read_shopify(datetime.now(UTC))
    return reconciliation_result(sync, location)


#: How the discrepancy count's verdict shows on the check: (passed, severity).
VERDICT_CHECK = {
    Verdict.WITHIN: (True, dg.AssetCheckSeverity.WARN),
    Verdict.WARN: (False, dg.AssetCheckSeverity.WARN),
    Verdict.FAIL: (False, dg.AssetCheckSeverity.ERROR),
}


def reconciliation_result(sync: InventorySync, location: str) -> dg.MaterializeResult:
    store, settings = sync.store, sync.settings
    report = inventory_report(
        location,
        netsuite=store.levels("netsuite", location),
        dcl=store.levels("dcl", location),
        shopify=store.levels("shopify", location),
        available_to_sell=store.levels("ats", location),
        sellable={sku for sku, (_, bundle) in store.items().items() if not bundle},
        flagged={sku for sku, detail in store.level_details("ats", location).items() if detail.get("flag")},
        tolerance=settings.tolerance,
        low_stock_threshold=settings.low_stock_threshold,
    )
    bad = len(report.discrepancies)
    passed, severity = VERDICT_CHECK[report.verdict(settings.warn_discrepancies, settings.fail_discrepancies)]
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.md(report.summary()),
            "worst_discrepancies": metadata_table(
                report.worst(TOP_ROWS),
                [
                    ("sku", "string"),
                    ("netsuite", "int"),
                    ("dcl", "int"),
                    ("shopify", "int"),
                    ("expected_shopify", "int"),
                    ("netsuite_minus_dcl", "int"),
                    ("shopify_minus_expected", "int"),
                ],
            ),
            "skus_checked": dg.MetadataValue.int(report.checked),
            "discrepancies": dg.MetadataValue.int(bad),
            "oversell_risk": dg.MetadataValue.int(report.oversell_risk),
            "low_stock": dg.MetadataValue.int(len(report.low_stock)),
            "mismatch_rate": dg.MetadataValue.float(bad / max(report.checked, 1)),
            "dagster/row_count": dg.MetadataValue.int(bad),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="discrepancies_within_threshold",
                passed=passed,
                severity=severity,
                description=(
                    f"{bad} discrepancies (warn above {settings.warn_discrepancies}, "
                    f"fail above {settings.fail_discrepancies})"
                ),
                metadata={"discrepancies": dg.MetadataValue.int(bad)},
            ),
            dg.AssetCheckResult(
                check_name="no_low_stock",
                passed=not report.low_stock,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"{len(report.low_stock)} SKU(s) at or below {settings.low_stock_threshold}",
                metadata={"skus": dg.MetadataValue.text(", ".join(report.low_stock[:TOP_ROWS]) or "none")},
            ),
        ],
    )


# -- jobs, schedules, automation ------------------------------------------------------------------
SYNC_ASSETS = [
    bundle_boms,
    netsuite_inventory_levels,
    bundle_availability,
    available_to_sell,
    shopify_inventory_push,
]

inventory_sync_job = dg.define_asset_job(
    "inventory_sync_job", selection=dg.AssetSelection.assets(*SYNC_ASSETS), tags=RUN_TAGS
)
inventory_reconciliation_job = dg.define_asset_job(
    "inventory_reconciliation_job",
    selection=dg.AssetSelection.assets(
        netsuite_inventory_levels, dcl_inventory_levels, inventory_reconciliation
    ),
    tags=RUN_TAGS,
)


def _per_location(context: dg.ScheduleEvaluationContext, kind: str) -> list[dg.RunRequest]:
    stamp = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M")
    return [dg.RunRequest(partition_key=loc, run_key=f"{kind}-{loc}-{stamp}") for loc in LOCATIONS]


@dg.schedule(
    cron_schedule="*/15 * * * *",
    job=inventory_sync_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes: NetSuite -> available to sell -> Shopify, per warehouse",
)
def inventory_sync_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    return _per_location(context, "sync")


@dg.schedule(
    cron_schedule="0 6 * * *",
    job=inventory_reconciliation_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily: NetSuite vs DCL vs Shopify report with checks",
)
def inventory_reconciliation_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    return _per_location(context, "reconcile")


@dg.sensor(
    job=inventory_sync_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Once per warehouse never synced: the first sync now, not at the next quarter hour",
)
def inventory_first_sync_sensor(context: dg.SensorEvaluationContext) -> list[dg.RunRequest]:
    """A new instance (a fresh `make dev`, a new deployment) would show empty partitions and push
    nothing to Shopify until the schedule's next quarter hour. The run key makes it fire once per
    warehouse for the life of the instance; the schedule takes over from there."""
    pushed = context.instance.get_materialized_partitions(shopify_inventory_push.key)
    return [
        dg.RunRequest(partition_key=location, run_key=f"first-sync-{location}")
        for location in LOCATIONS
        if location not in pushed
    ]


inventory_automation_sensor = dg.AutomationConditionSensorDefinition(
    "inventory_automation_sensor",
    target=dg.AssetSelection.assets(bundle_availability, available_to_sell, shopify_inventory_push),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    run_tags=RUN_TAGS,
    description="Bundle availability, available to sell and the push follow their inputs",
)

#: Flow E's Dagster objects; `mienne_ops.definitions` merges every flow's and adds the resources.
defs = dg.Definitions(
    assets=[*SYNC_ASSETS, dcl_inventory_levels, inventory_reconciliation],
    jobs=[inventory_sync_job, inventory_reconciliation_job],
    schedules=[inventory_sync_schedule, inventory_reconciliation_schedule],
    sensors=[inventory_automation_sensor, inventory_first_sync_sensor],
)
