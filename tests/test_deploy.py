"""ONNX export and the ONNX Runtime / OpenVINO backends: tiny MSFEN and PlainConvUNet networks in 2D and 3D,
exported and self-verified, then run through nnU-Net's own predictor (sliding window, mirroring, two folds) and
compared with PyTorch; broken export folders are named. The command line on a trained model runs in the end-to-end
tests."""
import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the [deploy] extra is not installed")

from nnunet_msfen.benchmark.networks import PLAIN, brats_arch, trainer_class  # noqa: E402
from nnunet_msfen.benchmark.nnunet_step import BRATS_DATASET_JSON, brats_plans  # noqa: E402
from nnunet_msfen.deploy import export as export_module  # noqa: E402
from nnunet_msfen.deploy.backends import BackendNetwork  # noqa: E402
from nnunet_msfen.deploy.export import EXPORT_JSON, TOLERANCE, ExportError, export_folds, load_export  # noqa: E402

BACKENDS = ["onnxruntime"] + (["openvino"] if __import__("importlib").util.find_spec("openvino") else [])


def _trained(tmp_path, name, config, n_folds=2, patch=None):
    """A stand-in for a trained model folder and the torch predictor nnU-Net would build from it."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    patch = patch or ([32, 32] if config == "2d" else [16, 16, 16])
    plans = brats_plans(config, PLAIN, brats_arch(config, 3), patch, 2)
    manager = PlansManager(plans)
    configuration = manager.get_configuration(config)
    cls = trainer_class(name)
    torch.manual_seed(0)
    parameters = [cls.build_network_architecture(manager, configuration, 4, 3, False).state_dict()
                  for _ in range(n_folds)]
    net = cls.build_network_architecture(manager, configuration, 4, 3, False)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(BRATS_DATASET_JSON))
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                perform_everything_on_device=False, device=torch.device("cpu"), allow_tqdm=False)
    predictor.manual_initialization(net, manager, configuration, parameters, dict(BRATS_DATASET_JSON), cls.__name__,
                                    tuple(range(len(patch))))
    return predictor, folder


@pytest.mark.parametrize("config", ["2d", "3d_fullres"])
@pytest.mark.parametrize("name", ["msfen", "plain"])
def test_export_verifies_itself_and_backends_predict_like_torch(tmp_path, name, config):
    predictor, folder = _trained(tmp_path, name, config)
    record = export_folds(predictor, ["0", "1"], folder, tmp_path / "export")
    assert set(record["verification"]) == {"0", "1"} and all(v["random"] <= 1e-3 for v in record["verification"].values())
    assert record["trainer"] == predictor.trainer_name and record["configuration"] == config
    assert {p.name for p in (tmp_path / "export").iterdir()} == {"fold_0.onnx", "fold_1.onnx", "plans.json",
                                                                  "dataset.json", EXPORT_JSON}
    case = torch.randn(4, *([3, 40, 36] if config == "2d" else [20, 24, 18]))  # several tiles, mirrored, 2 folds
    with torch.inference_mode():
        expected = predictor.predict_logits_from_preprocessed_data(case).numpy()
    for backend in BACKENDS:
        onnx_predictor = load_export(tmp_path / "export", backend, threads=1)
        with torch.inference_mode():
            got = onnx_predictor.predict_logits_from_preprocessed_data(case).numpy()
        # ONNX Runtime within the export's own tolerance; OpenVINO's CPU plugin picks other convolution algorithms
        # and was measured up to 1.7e-3 off on the untrained 2D MSFEN (logits up to ~2), so it gets 5e-3. Both plus
        # one float16 step at the logits' size: nnU-Net's predictor returns float16 logits.
        fp16_step = float(np.spacing(np.float16(np.abs(expected).max())))
        tolerance = (TOLERANCE if backend == "onnxruntime" else 5e-3) + fp16_step
        diff = np.abs(got.astype(np.float32) - expected.astype(np.float32)).max()
        assert got.shape == expected.shape and diff <= tolerance, (backend, diff)


def test_the_export_has_no_deep_supervision_heads_and_a_dynamic_batch(tmp_path):
    import onnx

    predictor, folder = _trained(tmp_path, "msfen", "2d", n_folds=1)
    export_folds(predictor, ["all"], folder, tmp_path / "export")
    model = onnx.load(str(tmp_path / "export" / "fold_all.onnx"))
    assert [o.name for o in model.graph.output] == ["logits"]
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "batch"
    net = BackendNetwork([tmp_path / "export" / "fold_all.onnx"], "onnxruntime")
    assert net(torch.randn(3, 4, 32, 32)).shape == (3, 3, 32, 32)


def test_a_fold_that_does_not_match_pytorch_fails_naming_it(tmp_path, monkeypatch):
    predictor, folder = _trained(tmp_path, "plain", "2d", n_folds=1)
    monkeypatch.setattr(export_module, "TOLERANCE", -1.0)  # nothing can pass
    with pytest.raises(ExportError, match="fold 3: ONNX Runtime's logits differ"):
        export_folds(predictor, ["3"], folder, tmp_path / "export")


@pytest.mark.parametrize("damage, named", [(lambda d: (d / EXPORT_JSON).unlink(), EXPORT_JSON),
                                           (lambda d: (d / "fold_0.onnx").unlink(), "fold_0.onnx"),
                                           (lambda d: (d / "fold_0.onnx").write_bytes(b"junk"), "cannot load"),
                                           (lambda d: (d / "plans.json").write_text("{"), "plans.json")])
def test_a_broken_export_folder_is_named(tmp_path, damage, named):
    predictor, folder = _trained(tmp_path, "plain", "2d", n_folds=1)
    export_folds(predictor, ["0"], folder, tmp_path / "export")
    damage(tmp_path / "export")
    with pytest.raises(ExportError, match=named):
        load_export(tmp_path / "export", "onnxruntime")


def test_backend_network_selects_folds_like_a_state_dict_and_refuses_others(tmp_path):
    predictor, folder = _trained(tmp_path, "plain", "2d")
    export_folds(predictor, ["0", "1"], folder, tmp_path / "export")
    net = BackendNetwork([tmp_path / "export" / "fold_0.onnx", tmp_path / "export" / "fold_1.onnx"], "onnxruntime")
    x = torch.randn(1, 4, 32, 32)
    net.load_state_dict({"fold": 1})
    one = net(x)
    net.load_state_dict({"fold": 0})
    assert not torch.allclose(one, net(x))
    with pytest.raises(ValueError, match="'fold': 2"):
        net.load_state_dict({"fold": 2})
    with pytest.raises(ValueError, match="backend must be one of"):
        BackendNetwork([tmp_path / "export" / "fold_0.onnx"], "tensorrt")


def test_a_bottleneck_the_pyramid_bins_do_not_divide_exports(tmp_path):
    # a 2d BraTS plan ends on a 6 x 5 bottleneck: ONNX's adaptive pooling would refuse the bins 2 and 4
    predictor, folder = _trained(tmp_path, "msfen", "2d", n_folds=1, patch=[24, 20])
    record = export_folds(predictor, ["0"], folder, tmp_path / "export")
    assert record["verification"]["0"]["random"] <= 1e-3


# --- int8 ----------------------------------------------------------------------------------------------------------
def test_region_dice_pools_overlaps_over_patches():
    from nnunet_msfen.deploy.quantize import region_dice

    pred = [np.array([0, 1, 3, 3]), np.array([0, 0, 0, 0])]
    ref = [np.array([0, 1, 1, 3]), np.array([0, 0, 0, 3])]
    dice = region_dice(pred, ref, {"wt": (1, 2, 3), "et": (3,), "nc": (2,)})
    assert dice["wt"] == pytest.approx(2 * 3 / (3 + 4)) and dice["et"] == pytest.approx(2 * 1 / (2 + 2))
    assert np.isnan(dice["nc"])


@pytest.mark.parametrize("method", ["static", "dynamic"])
@pytest.mark.parametrize("threshold, offered", [(1.0, True), (-1.0, False)])
def test_quantisation_reports_and_keeps_the_int8_models_only_where_dice_holds(tmp_path, monkeypatch, method,
                                                                            threshold, offered):
    from nnunet_msfen.deploy import quantize

    predictor, folder = _trained(tmp_path, "msfen", "2d", n_folds=1)
    export = tmp_path / "export"
    record = export_folds(predictor, ["0"], folder, export)
    rng = np.random.default_rng(0)
    patches = [(rng.standard_normal((1, 4, 32, 32)).astype(np.float32), rng.integers(0, 4, (32, 32)))
               for _ in range(4)]
    monkeypatch.setattr(quantize, "MAX_DICE_LOSS", threshold)
    entry = quantize.quantize_export(export, record, method, patches, predictor.label_manager)
    fold = entry["folds"]["0"]
    assert entry["calibration_patches"] == entry["checked_patches"] == 2 and entry["offered"] is offered
    assert fold["bytes"]["int8"] < fold["bytes"]["float"] and fold["seconds_per_patch"]["int8"] > 0
    assert set(fold["dice"]["int8"]) == {"whole tumor", "tumor core", "enhancing tumor"}
    assert (export / "fold_0.int8.onnx").is_file() is offered
    record["int8"] = entry
    (export / EXPORT_JSON).write_text(json.dumps(record))
    if offered:
        net = load_export(export, "onnxruntime", int8=True).network
        assert net(torch.from_numpy(patches[2][0])).shape == (1, 3, 32, 32)
    else:
        with pytest.raises(ExportError, match="were not kept"):
            load_export(export, "onnxruntime", int8=True)


def test_int8_of_an_export_without_int8_models_is_an_error(tmp_path):
    predictor, folder = _trained(tmp_path, "plain", "2d", n_folds=1)
    export_folds(predictor, ["0"], folder, tmp_path / "export")
    with pytest.raises(ExportError, match="no int8 models: export with --quantize"):
        load_export(tmp_path / "export", "onnxruntime", int8=True)


def test_quantisation_needs_patches_to_calibrate_and_to_check():
    from nnunet_msfen.deploy.quantize import quantize_export

    with pytest.raises(ValueError, match="at least 2 real preprocessed patches"):
        quantize_export(None, {"files": {}}, "static", [(None, None)], None)


def test_int8_is_kept_only_where_it_is_as_accurate_and_agrees_with_the_float_output():
    from nnunet_msfen.deploy.quantize import MAX_DICE_LOSS, compare_int8

    regions = {"wt": (1, 2, 3), "et": (3,)}
    ref = [np.array([0, 1, 1, 3, 3, 0, 0, 0])]
    same = compare_int8(ref, [ref[0].copy()], ref, regions)
    assert same["kept"] and same["dice_loss"] == 0.0 and same["worst_agreement"] == 1.0
    # equally accurate against the references (one voxel wrong each), but on different voxels: disagreement
    float_seg, int8_seg = [np.array([0, 1, 1, 3, 3, 1, 0, 0])], [np.array([0, 1, 1, 3, 3, 0, 1, 0])]
    checks = compare_int8(float_seg, int8_seg, ref, regions)
    assert checks["dice_loss"] == 0.0 and checks["worst_agreement"] < 1 - MAX_DICE_LOSS and not checks["kept"]
    worse = compare_int8(ref, [np.array([0, 1, 1, 3, 0, 0, 0, 0])], ref, regions)  # ET loses a voxel
    assert worse["dice_loss"] == pytest.approx(1 - 2 / 3) and not worse["kept"]
