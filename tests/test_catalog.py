"""The VM size catalog and the price snapshot: data invariants, lookups, filters, builders."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gpustack import catalog, prices

SHARED_PRICE_DUMP = Path("/work/shared/data/azure_vm_prices.csv")
CSV_HEADER = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,Generation\n"  # noqa: E501


def _raw_snapshot() -> dict:
    return json.loads(prices.SNAPSHOT_PATH.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- data invariants


def test_every_infiniband_size_is_an_nd_size() -> None:
    ib_sizes = [s for s in catalog.all_sizes() if s.has_infiniband]
    assert ib_sizes, "the catalog should carry InfiniBand sizes"
    for size in ib_sizes:
        assert size.name.startswith("Standard_ND"), size.name
        assert size.infiniband in {"HDR 200 Gb/s", "NDR 400 Gb/s", "XDR 800 Gb/s"}, size.name


def test_infiniband_sizes_require_gen2_and_are_gpu_sizes() -> None:
    for size in catalog.all_sizes():
        if size.has_infiniband:
            assert size.gen2_required and size.is_gpu, size.name


def test_gpu_count_is_positive_exactly_when_gpu_model_is_set() -> None:
    for size in catalog.all_sizes():
        assert (size.gpu_count > 0) == (size.gpu_model is not None), size.name
        assert (size.gpu_memory_gb > 0) == size.is_gpu, size.name


def test_mig_only_on_a100_h100_h200() -> None:
    for size in catalog.all_sizes():
        if size.mig:
            assert size.gpu_model is not None, size.name
            assert size.gpu_model.split()[0] in {"A100", "H100", "H200"}, size.name
    assert not catalog.lookup("Standard_NC4as_T4_v3").mig
    assert not catalog.lookup("Standard_NV36ads_A10_v5").mig
    assert catalog.lookup("Standard_NC24ads_A100_v4").mig


def test_grid_driver_only_on_nv_sizes_and_no_driver_on_cpu_sizes() -> None:
    for size in catalog.all_sizes():
        if size.driver == "GRID":
            assert size.name.startswith("Standard_NV"), size.name
        assert (size.driver is None) == (not size.is_gpu), size.name
        assert size.driver in {None, "CUDA", "GRID", "ROCm"}, size.name
        # ROCm is AMD's stack and only AMD's; an NVIDIA size never gets it.
        assert (size.driver == "ROCm") == (size.gpu_vendor == "AMD"), size.name


def test_ephemeral_os_disk_limit_never_exceeds_local_disk_or_2040_gib() -> None:
    for size in catalog.all_sizes():
        limit = size.max_ephemeral_os_disk_gib
        assert 0 <= limit <= 2040, size.name
        assert limit <= max(size.temp_disk_gib, size.nvme_disk_gib), size.name


def test_every_size_names_its_sources_and_verification_date() -> None:
    for size in catalog.all_sizes():
        assert size.sources, size.name
        assert all(url.startswith("https://") for url in size.sources), size.name
        # The original series were checked on 2026-11-22, the ones added later on 2026-11-25.
        assert size.verified in {"2026-11-22", "2026-11-25"}, size.name


def test_unverified_facts_name_real_fields() -> None:
    field_names = set(catalog.VmSize.__dataclass_fields__)
    for size in catalog.all_sizes():
        assert set(size.unverified) <= field_names, size.name


def test_catalog_holds_the_sizes_the_stacks_plan_with() -> None:
    expected = {
        "Standard_NC4as_T4_v3", "Standard_NC8as_T4_v3", "Standard_NC16as_T4_v3",
        "Standard_NC64as_T4_v3", "Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4",
        "Standard_NC96ads_A100_v4", "Standard_ND96asr_v4", "Standard_ND96amsr_A100_v4",
        "Standard_ND96isr_H100_v5", "Standard_ND96isr_H200_v5", "Standard_NC40ads_H100_v5",
        "Standard_NV36ads_A10_v5", "Standard_D2s_v5", "Standard_D4s_v5", "Standard_D8s_v5",
        "Standard_D16s_v5", "Standard_D4ds_v5", "Standard_D8ds_v5", "Standard_D4as_v5",
        "Standard_D8as_v5", "Standard_E4s_v5", "Standard_E8s_v5",
    }  # fmt: skip
    assert expected <= {s.name for s in catalog.all_sizes()}


def test_derived_properties_multiply_per_device_facts() -> None:
    nd = catalog.lookup("Standard_ND96isr_H200_v5")
    assert nd.total_vram_gb == 8 * 141
    assert nd.nvme_total_gib == 8 * 3584
    assert catalog.lookup("Standard_D4s_v5").nvme_total_gib == 0


# ----------------------------------------------------------------------------- price snapshot


def test_every_priced_size_exists_in_the_catalog() -> None:
    names = {s.name for s in catalog.all_sizes()}
    assert set(_raw_snapshot()["prices"]) <= names


def test_spot_is_cheaper_than_payg_wherever_a_spot_price_is_present() -> None:
    for size, regions in _raw_snapshot()["prices"].items():
        for region, entry in regions.items():
            assert entry["payg"] > 0, (size, region)
            if entry["spot"] is not None:
                assert entry["spot"] < entry["payg"], (size, region)


def test_snapshot_records_source_date_currency_and_unit() -> None:
    snapshot = _raw_snapshot()
    assert snapshot["currency"] == "USD"
    assert "Linux" in snapshot["unit"]
    assert "prices.azure.com" in snapshot["source"]
    assert catalog.prices_as_of().startswith(snapshot["as_of"])
    # The snapshot records when it was built, even though the dump's own date is unknown.
    assert snapshot["retrieved"] in catalog.prices_as_of()


def test_unpriced_size_has_no_snapshot_entry_and_no_price() -> None:
    h200 = catalog.lookup("Standard_ND96isr_H200_v5")
    assert "Standard_ND96isr_H200_v5" not in _raw_snapshot()["prices"]
    assert h200.prices == {}
    assert h200.price("eastus") is None


def test_price_reads_payg_and_spot_for_a_region() -> None:
    t4 = catalog.lookup("Standard_NC4as_T4_v3")
    assert t4.price("eastus") == pytest.approx(0.526)
    assert t4.price("EastUS", spot=True) == pytest.approx(0.062699)
    assert t4.price("westeurope") is None


@pytest.mark.skipif(not SHARED_PRICE_DUMP.exists(), reason="shared price dump not present")
def test_committed_snapshot_is_exactly_the_csv_rebuild() -> None:
    assert prices.build_snapshot_from_csv(SHARED_PRICE_DUMP) == _raw_snapshot()


def test_csv_builder_stores_null_spot_when_spot_equals_payg(tmp_path: Path) -> None:
    dump = tmp_path / "vms.csv"
    dump.write_text(
        CSV_HEADER
        + "Standard_NC40ads_H100_v5,H100,1,40.0,320,H100,6.98,6.98,eastus,V2\n"
        + 'Standard_NC4as_T4_v3,T4,1,4.0,28,T4,0.526,0.062699,eastus,"V1,V2"\n'
        + 'Standard_NC4as_T4_v3,T4,1,4.0,28,T4,0.631,,southcentralus,"V1,V2"\n'
        + 'Standard_NC8as_T4_v3,T4,1,8.0,56,T4,,,eastus,"V1,V2"\n'
        + 'Standard_NC4as_T4_v3,T4,1,4.0,28,T4,0.6,0.07,westeurope,"V1,V2"\n'
        + "Standard_NC6,K80,1,6.0,56,K80,0.9,0.1,eastus,V1\n",
        encoding="utf-8",
    )

    snapshot = prices.build_snapshot_from_csv(dump)

    csv = prices.CSV_SOURCE_KEY
    assert snapshot["prices"] == {
        "Standard_NC40ads_H100_v5": {"eastus": {"payg": 6.98, "spot": None, "source": csv}},
        "Standard_NC4as_T4_v3": {
            "eastus": {"payg": 0.526, "spot": 0.062699, "source": csv},
            "southcentralus": {"payg": 0.631, "spot": None, "source": csv},
            "westeurope": {"payg": 0.6, "spot": 0.07, "source": csv},
        },
    }
    assert snapshot["regions"] == ["eastus", "southcentralus", "westeurope"]
    assert snapshot["sources"][csv]["retrieved"] == prices.CSV_RETRIEVED
    assert snapshot["currency"] == "USD"
    assert snapshot["as_of"]


def test_csv_builder_rejects_conflicting_duplicate_rows(tmp_path: Path) -> None:
    dump = tmp_path / "vms.csv"
    dump.write_text(
        CSV_HEADER
        + 'Standard_D2s_v5,,,2.0,8,,0.096,0.01,eastus,"V1,V2"\n'
        + 'Standard_D2s_v5,,,2.0,8,,0.1,0.01,eastus,"V1,V2"\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="two different prices"):
        prices.build_snapshot_from_csv(dump)


def test_refresh_offline_raises_and_leaves_the_snapshot_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_network(*_args: object, **_kwargs: object) -> None:
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(prices.PriceRefreshError, match="left untouched"):
        prices.refresh_from_retail_api(["Standard_D2s_v5"], ["eastus"])

    out = tmp_path / "prices.json"
    out.write_text('{"sentinel": true}\n', encoding="utf-8")
    parser = argparse.ArgumentParser()
    prices.add_prices_arguments(parser)

    code = prices.run_prices(parser.parse_args(["refresh", "--out", str(out)]))

    assert code == 2
    assert out.read_text(encoding="utf-8") == '{"sentinel": true}\n'
    assert list(tmp_path.iterdir()) == [out], "no temporary file may be left behind"
    assert "Azure Retail Prices API" in capsys.readouterr().err


def test_refresh_parses_linux_payg_and_spot_meters(monkeypatch: pytest.MonkeyPatch) -> None:
    page = {
        "Items": [
            {"armRegionName": "eastus", "armSkuName": "Standard_D2s_v5", "retailPrice": 0.096,
             "skuName": "D2s v5", "productName": "Virtual Machines Dsv5 Series"},
            {"armRegionName": "eastus", "armSkuName": "Standard_D2s_v5", "retailPrice": 0.0106,
             "skuName": "D2s v5 Spot", "productName": "Virtual Machines Dsv5 Series"},
            {"armRegionName": "eastus", "armSkuName": "Standard_D2s_v5", "retailPrice": 0.188,
             "skuName": "D2s v5", "productName": "Virtual Machines Dsv5 Series Windows"},
            {"armRegionName": "westeurope", "armSkuName": "Standard_D2s_v5", "retailPrice": 0.1,
             "skuName": "D2s v5", "productName": "Virtual Machines Dsv5 Series"},
        ],
        "NextPageLink": None,
    }  # fmt: skip

    class Response:
        def __enter__(self) -> Response:
            return self

        def __exit__(self, *_exc: object) -> None:
            return None

        def read(self) -> bytes:
            return json.dumps(page).encode()

    monkeypatch.setattr(urllib.request, "urlopen", lambda *_a, **_k: Response())

    snapshot = prices.refresh_from_retail_api(["Standard_D2s_v5"], ["eastus"], today="2026-11-25")

    api = prices.API_SOURCE_KEY
    assert snapshot["prices"] == {
        "Standard_D2s_v5": {"eastus": {"payg": 0.096, "spot": 0.0106, "source": api}}
    }
    assert snapshot["sources"][api]["as_of"] == "2026-11-25"


def test_written_snapshot_is_readable_package_data(tmp_path: Path) -> None:
    snapshot = _raw_snapshot()
    fresh = prices.write_snapshot(snapshot, tmp_path / "new.json")
    assert fresh.stat().st_mode & 0o777 == 0o644

    existing = tmp_path / "existing.json"
    existing.write_text("{}", encoding="utf-8")
    existing.chmod(0o664)
    prices.write_snapshot(snapshot, existing)
    assert existing.stat().st_mode & 0o777 == 0o664
    assert json.loads(existing.read_text(encoding="utf-8")) == snapshot


def test_write_snapshot_rejects_a_bad_snapshot_and_keeps_the_old_file(tmp_path: Path) -> None:
    out = tmp_path / "prices.json"
    out.write_text("old\n", encoding="utf-8")
    bad = {"source": "x", "as_of": "2025", "currency": "USD", "unit": "h",
           "prices": {"Standard_D2s_v5": {"eastus": {"payg": -1, "spot": None}}}}  # fmt: skip
    with pytest.raises(ValueError, match="payg"):
        prices.write_snapshot(bad, out)
    assert out.read_text(encoding="utf-8") == "old\n"


# ----------------------------------------------------------------------------- lookups and output


def test_lookup_accepts_any_case() -> None:
    assert catalog.lookup("standard_nc4as_t4_v3").name == "Standard_NC4as_T4_v3"


def test_unknown_size_error_names_the_size_and_lists_every_supported_size() -> None:
    with pytest.raises(catalog.UnknownVmSizeError) as caught:
        catalog.lookup("Standard_NC4as_T4_v9")
    message = str(caught.value)
    assert "Standard_NC4as_T4_v9" in message
    for size in catalog.all_sizes():
        assert size.name in message
    assert isinstance(caught.value, ValueError)


def test_catalog_json_carries_the_contract_keys() -> None:
    rows = catalog.catalog_json([catalog.lookup("Standard_NC24ads_A100_v4")])
    keys = {
        "name", "vcpus", "memory_gib", "gpu_model", "gpu_count", "gpu_memory_gb", "infiniband",
        "nvme_disks", "quota_family", "mig", "driver", "prices",
    }  # fmt: skip
    assert keys <= set(rows[0])
    assert rows[0]["prices"]["eastus"] == {"payg": 3.673, "spot": 0.444433}
    assert rows[0]["infiniband"] is None
    json.dumps(rows)  # plain data only


def test_catalog_rows_filter_by_region_gpu_and_infiniband() -> None:
    in_westus2 = {s.name for s in catalog.catalog_rows(region="westus2")}
    assert "Standard_ND96isr_H100_v5" not in in_westus2  # priced in eastus/eastus2 only
    assert "Standard_ND96asr_v4" in in_westus2

    a100 = catalog.catalog_rows(gpu="a100")
    assert a100 and all(s.gpu_model == "A100" for s in a100)

    ib = catalog.catalog_rows(infiniband=True)
    assert {s.name for s in ib} == {
        "Standard_ND96asr_v4", "Standard_ND96amsr_A100_v4",
        "Standard_ND96isr_H100_v5", "Standard_ND96isr_H200_v5",
        "Standard_ND96isr_MI300X_v5", "Standard_ND128isr_NDR_GB200_v6",
        "Standard_ND128isr_GB300_v6", "Standard_ND128isrG5_GB300_v6",
    }  # fmt: skip
    assert not any(s.has_infiniband for s in catalog.catalog_rows(infiniband=False))

    both = catalog.catalog_rows(region="eastus", gpu="H100", infiniband=True)
    assert [s.name for s in both] == ["Standard_ND96isr_H100_v5"]


def test_catalog_table_shows_filtered_rows_with_region_prices() -> None:
    table = catalog.catalog_table(catalog.catalog_rows(region="eastus", gpu="T4"), region="eastus")
    lines = table.splitlines()
    assert lines[0].startswith("SIZE")
    assert "PAYG $/h (eastus)" in lines[0]
    body = [line for line in lines[2:] if line.startswith("Standard_")]
    assert [line.split()[0] for line in body] == [
        "Standard_NC4as_T4_v3", "Standard_NC8as_T4_v3",
        "Standard_NC16as_T4_v3", "Standard_NC64as_T4_v3",
    ]  # fmt: skip
    assert "0.526" in body[0] and "standardNCASv3_T4Family" in body[0]
    assert "A100" not in table


def test_run_catalog_prints_json_and_rejects_regions_outside_the_snapshot(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser()
    catalog.add_catalog_arguments(parser)

    assert catalog.run_catalog(parser.parse_args(["--infiniband", "--format", "json"])) == 0
    names = [row["name"] for row in json.loads(capsys.readouterr().out)]
    assert names and all(name.startswith("Standard_ND") for name in names)

    assert catalog.run_catalog(parser.parse_args(["--region", "westeurope"])) == 2
    assert "westeurope" in capsys.readouterr().err


def test_quota_family_key_matches_azure_spelling_variants() -> None:
    t4 = catalog.lookup("Standard_NC4as_T4_v3").quota_family
    assert catalog.quota_family_key("Standard NCASv3_T4 Family") == catalog.quota_family_key(t4)


# ----------------------------------------------------------------------------- sourced rows
# Rows copied from Microsoft's size pages (MicrosoftDocs/azure-compute-docs,
# articles/virtual-machines/sizes/...): size, vCPUs, memory GiB, GPUs (as the page writes them),
# accelerator memory the VM sees (GB), temp disk GiB. The catalog must say the same.
SOURCED_ROWS = [
    # nvadsa10v5-series.md
    ("Standard_NV6ads_A10_v5", 6, 55, "1/6", 4, 180),
    ("Standard_NV12ads_A10_v5", 12, 110, "1/3", 8, 360),
    ("Standard_NV18ads_A10_v5", 18, 220, "1/2", 12, 720),
    ("Standard_NV36ads_A10_v5", 36, 440, "1", 24, 1440),
    ("Standard_NV36adms_A10_v5", 36, 880, "1", 24, 2880),
    ("Standard_NV72ads_A10_v5", 72, 880, "2", 48, 2880),
    # ncadsh100v5-series.md
    ("Standard_NC40ads_H100_v5", 40, 320, "1", 94, 3576),
    ("Standard_NC80adis_H100_v5", 80, 640, "2", 188, 7152),
    # nccadsh100v5-series.md
    ("Standard_NCC40ads_H100_v5", 40, 320, "1", 94, 800),
    # ndmi300xv5-series.md (the accelerator table says 1535 GB; the spec 192 GB per GPU)
    ("Standard_ND96isr_MI300X_v5", 96, 1850, "8", 8 * 192, 1000),
    # nd-gb200-v6-series.md
    ("Standard_ND128isr_NDR_GB200_v6", 128, 900, "4", 4 * 192, 0),
    # nvadsv710-v5-series.md
    ("Standard_NV4ads_V710_v5", 4, 16, "1/6", 4, 256),
    ("Standard_NV8ads_V710_v5", 8, 32, "1/3", 8, 512),
    ("Standard_NV12ads_V710_v5", 12, 64, "1/2", 12, 768),
    ("Standard_NV24ads_V710_v5", 24, 128, "1", 24, 1536),
    ("Standard_NV28adms_V710_v5", 28, 160, "1", 24, 1536),
    # nd-gb300-v6-series.md
    ("Standard_ND128isr_GB300_v6", 128, 864, "4", 4 * 288, 0),
    ("Standard_ND128isrG5_GB300_v6", 128, 864, "4", 4 * 288, 0),
    # nc-rtxpro6000-bse-v6-series.md (general purpose, then compute optimized sizes)
    ("Standard_NC128ds_xl_RTXPRO6000BSE_v6", 128, 512, "1", 96, 1024),
    ("Standard_NC256ds_xl_RTXPRO6000BSE_v6", 256, 1024, "2", 192, 2048),
    ("Standard_NC320ds_xl_RTXPRO6000BSE_v6", 320, 1280, "2", 192, 2048),
    ("Standard_NC128lds_xl_RTXPRO6000BSE_v6", 128, 256, "1", 96, 1024),
    ("Standard_NC256lds_xl_RTXPRO6000BSE_v6", 256, 512, "2", 192, 2048),
    ("Standard_NC320lds_xl_RTXPRO6000BSE_v6", 320, 640, "2", 192, 2048),
    # compute-optimized/fsv2-series.md and fasv6-series.md (no accelerators)
    ("Standard_F2s_v2", 2, 4, "0", 0, 16),
    ("Standard_F4s_v2", 4, 8, "0", 0, 32),
    ("Standard_F8s_v2", 8, 16, "0", 0, 64),
    ("Standard_F16s_v2", 16, 32, "0", 0, 128),
    ("Standard_F4as_v6", 4, 16, "0", 0, 0),
    ("Standard_F8as_v6", 8, 32, "0", 0, 0),
    ("Standard_F16as_v6", 16, 64, "0", 0, 0),
]


@pytest.mark.parametrize(
    ("name", "vcpus", "memory", "gpus", "accelerator_gb", "temp_gib"),
    SOURCED_ROWS,
    ids=[row[0] for row in SOURCED_ROWS],
)
def test_new_sizes_match_their_sourced_rows(
    name: str, vcpus: int, memory: int, gpus: str, accelerator_gb: int, temp_gib: int
) -> None:
    size = catalog.lookup(name)
    assert size.vcpus == vcpus
    assert size.memory_gib == memory
    numerator, _, denominator = gpus.partition("/")
    if denominator:
        # A 1/N partition: one GPU device shared N ways, as the accelerator table writes it.
        assert (size.gpu_count, size.gpu_partition) == (int(numerator), int(denominator))
    else:
        assert (size.gpu_count, size.gpu_partition) == (int(numerator), 1)
    assert size.total_vram_gb == accelerator_gb
    assert size.temp_disk_gib == temp_gib
    assert size.sources and size.verified


def test_amd_sizes_use_rocm_and_never_an_nvidia_driver() -> None:
    amd = [s for s in catalog.all_sizes() if s.gpu_vendor == "AMD"]
    assert {s.series for s in amd} == {"ND_MI300X_v5", "NVads_V710_v5"}
    assert all(s.driver == "ROCm" and not s.mig for s in amd)


def test_gb200_is_arm64_with_ndr_infiniband_and_four_gpus() -> None:
    gb200 = catalog.lookup("Standard_ND128isr_NDR_GB200_v6")
    assert gb200.architecture == "Arm64"
    assert gb200.infiniband == "NDR 400 Gb/s" and gb200.gpu_count == 4
    assert "nvme_disk_gib" in gb200.unverified


def test_retired_and_windows_only_sizes_are_refused_with_the_reason() -> None:
    with pytest.raises(catalog.UnknownVmSizeError, match="retired by Azure on 2025-09-30"):
        catalog.lookup("Standard_NC6s_v3")
    with pytest.raises(catalog.UnknownVmSizeError, match="Windows"):
        catalog.lookup("Standard_NG8ads_V620_v1")
    names = {s.name for s in catalog.all_sizes()}
    for entry in catalog.not_offered_series().values():
        assert entry["source"].startswith("https://")
        assert not names & set(entry["sizes"])


def test_unverified_facts_are_marked_in_the_table_and_json() -> None:
    nd = catalog.lookup("Standard_ND96asr_v4")
    assert {"nvme_disks", "nvme_disk_gib"} <= set(nd.unverified)
    table = catalog.catalog_table([nd])
    (row,) = [line for line in table.splitlines() if line.startswith("Standard_ND96asr_v4")]
    assert "8x?*" in row
    assert "* marks a fact no source confirmed" in table
    (as_json,) = catalog.catalog_json([nd])
    assert set(as_json["unverified"]) == set(nd.unverified)


def test_fractional_sizes_show_their_share_of_a_gpu() -> None:
    table = catalog.catalog_table([catalog.lookup("Standard_NV6ads_A10_v5")])
    assert "1/6 A10" in table


def test_has_prices_tells_priced_from_unpriced_regions() -> None:
    snapshot = _raw_snapshot()
    for region in snapshot["regions"]:
        assert catalog.has_prices(region)
    assert not catalog.has_prices("westeurope")


def test_every_price_row_names_a_dated_source() -> None:
    snapshot = _raw_snapshot()
    for size, regions in snapshot["prices"].items():
        for region, entry in regions.items():
            record = prices.row_source(snapshot, entry)
            assert record["as_of"] and record["retrieved"], (size, region)


def test_snapshot_covers_every_csv_region_for_catalog_sizes() -> None:
    import csv

    if not SHARED_PRICE_DUMP.exists():
        pytest.skip("shared price dump not present")
    names = {s.name for s in catalog.all_sizes()}
    with SHARED_PRICE_DUMP.open(newline="", encoding="utf-8") as handle:
        expected = {
            (row["InstanceType"], row["Region"])
            for row in csv.DictReader(handle)
            if row["InstanceType"] in names and row["Price"].strip()
        }
    got = {
        (size, region) for size, regions in _raw_snapshot()["prices"].items() for region in regions
    }
    assert got == expected


def test_refresh_writes_the_same_format_from_a_recorded_api_response(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixture = Path(__file__).parent / "fixtures" / "retail_prices_nc4as_t4.json"
    pages = json.loads(fixture.read_text(encoding="utf-8"))

    class Response:
        def __init__(self, body: dict) -> None:
            self.body = body

        def __enter__(self) -> Response:
            return self

        def __exit__(self, *_exc: object) -> None:
            return None

        def read(self) -> bytes:
            return json.dumps(self.body).encode()

    calls: list[str] = []

    def urlopen(url: str, timeout: float) -> Response:
        calls.append(url)
        return Response(pages[len(calls) - 1])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    snapshot = prices.refresh_from_retail_api(["Standard_NC4as_T4_v3"], today="2026-11-25")
    out = prices.write_snapshot(snapshot, tmp_path / "prices.json")

    assert len(calls) == len(pages), "every NextPageLink is followed"
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written == snapshot
    assert out.read_text(encoding="utf-8") == prices.snapshot_text(snapshot)
    rows = written["prices"]["Standard_NC4as_T4_v3"]
    # Every Linux consumption region the recorded response lists; Windows and low priority out.
    linux = {
        item["armRegionName"]
        for page in pages
        for item in page["Items"]
        if "Windows" not in item["productName"] and not item["skuName"].endswith("Low Priority")
    }
    assert set(rows) == linux
    assert written["regions"] == sorted(linux)
    for region, entry in rows.items():
        payg = min(
            i["retailPrice"]
            for page in pages
            for i in page["Items"]
            if i["armRegionName"] == region
            and i["skuName"] == "NC4as T4 v3"
            and "Windows" not in i["productName"]
        )
        assert entry["payg"] == payg
        assert entry["source"] == prices.API_SOURCE_KEY
    assert written["sources"][prices.API_SOURCE_KEY]["as_of"] == "2026-11-25"


# ----------------------------------------------------------------------------- facts drive config


def _prod_values() -> dict:
    import yaml

    from stacks.config import PROJECT

    raw = yaml.safe_load((Path(__file__).resolve().parent.parent / "Pulumi.prod.yaml").read_text())
    return {key[len(PROJECT) + 1 :]: value for key, value in raw["config"].items()}


def test_config_refuses_an_aks_driver_path_the_size_does_not_offer() -> None:
    from stacks.config import ConfigError, parse_config

    mi300x = catalog.lookup("Standard_ND96isr_MI300X_v5")
    assert "Install" not in mi300x.aks_gpu_drivers
    values = _prod_values()
    values["aks"]["gpuPools"][1] |= {"vmSize": mi300x.name, "driver": "Install"}
    with pytest.raises(ConfigError) as caught:
        parse_config(values, "Pulumi.prod.yaml")
    assert "aks.gpuPools[1].driver: Install is not usable" in str(caught.value)
    values["aks"]["gpuPools"][1]["driver"] = "None"
    parse_config(values, "Pulumi.prod.yaml")


def test_config_wants_an_image_for_an_arm64_vm_pool() -> None:
    from stacks.config import ConfigError, parse_config

    values = _prod_values()
    values["vmPools"][0] |= {"vmSize": "Standard_ND128isr_NDR_GB200_v6"}
    with pytest.raises(ConfigError, match="Arm64"):
        parse_config(values, "Pulumi.prod.yaml")
