"""bt_core.reference.published: the published results file and its loader."""

import pytest

from bt_core.models.registry import list_models
from bt_core.reference.published import load_published_results, published_results_path

ISSUE_FIGURES = {("custom_cnn", 0.9903), ("resnet50", 0.9844), ("resnet50", 0.98), ("vgg16", 0.9783)}


def test_the_shipped_file_loads_and_every_row_has_a_source_and_a_zoo_model():
    results = load_published_results()
    assert published_results_path().name == "published_results.toml"
    assert ISSUE_FIGURES <= {(r.architecture, r.value) for r in results}
    models = set(list_models())
    for result in results:
        assert result.architecture in models, result
        assert result.source.strip() and 0 < result.value <= 1
        # A verified row names where it was read; an unverified one says it is a quotation.
        assert result.url.startswith("https://") if result.verified else "not found" in result.source


@pytest.mark.parametrize("row, message", [
    ('value = 0.9', r"result 1 lacks architecture, model, metric"),
    ('architecture = "vgg16"\nmodel = "VGG16"\nmetric = "accuracy"\nvalue = 1.5\ntask = "t"\ndataset = "d"\n'
     'pretraining = "none"\nsplit = "s"\nduplicates = "kept"\nsource = "paper"', r"value must be a share in \[0, 1\]"),
    ('architecture = "vgg16"\nmodel = "VGG16"\nmetric = "accuracy"\nvalue = 0.9\ntask = "t"\ndataset = "d"\n'
     'pretraining = "none"\nsplit = "s"\nduplicates = "kept"\nsource = " "', r"result 1 has no source"),
])
def test_a_row_without_a_source_or_a_share_is_refused_naming_it(tmp_path, row, message):
    path = tmp_path / "published.toml"
    path.write_text(f"[[result]]\n{row}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_published_results(path)
