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
        assert size.infiniband in {"HDR 200 Gb/s", "NDR 400 Gb/s"}, size.name


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
    assert snapshot["as_of"] == catalog.prices_as_of()


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
