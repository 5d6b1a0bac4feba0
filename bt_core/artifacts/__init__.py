"""The run contract: the only package that knows run paths and file formats.

    layout     every path and file name of a run folder
    schema     the manifest, its model entries, dataset record, evaluation block and the
               shortcut summary as frozen dataclasses with versioned from_json / to_json
    files      atomic writes, JSON / CSV, links, temporary files
    tables     predictions (checked, in test image order), split, test images and boxes, the
               cheap model.keras check
    writer     RunWriter
    reader     Run, ModelArtifacts, RunSummary, list_runs, load_run, load_model, evaluation_problems
    maps       precomputed explanation maps and their stored shares
    heads      the test images' head masks (test_heads.npz)
    shortcuts  the shortcut measures store
    data_profile  the data explored (data/profile.json, data/thumbnails.npz)
    study      a study folder: study.json, study.toml, runs/, tables/ (list_studies, load_study)

This module only re-exports, so ``from bt_core import artifacts`` gives every name. The layout
is documented in docs/artifacts.md and versioned by ``format_version`` in manifest.json.
"""

from bt_core.artifacts.errors import ArtifactError
from bt_core.artifacts.files import (
    NoSpaceLeft,
    is_disk_full,
    is_temporary_file,
    link_or_copy,
    naming_a_full_disk,
    read_json,
    remove_temporary_files,
    write_csv,
    write_json,
)
from bt_core.artifacts.layout import (
    BACKUP_DIR,
    EVALUATIONS_DIR,
    HISTORY,
    HISTORY_COLUMNS,
    MANIFEST,
    MAP_SHARE_PREFIX,
    MAP_SHARES,
    MAPS_DIR,
    MAPS_SUFFIX,
    METRICS,
    MODEL_CARD,
    MODEL_FILE,
    MODEL_FILES,
    MODELS_DIR,
    PREDICTIONS,
    SHORTCUTS_DIR,
    SHORTCUTS_DUPLICATES,
    SHORTCUTS_SUMMARY,
    SPLIT,
    SPLIT_COLUMNS,
    TEST_BOX_COLUMNS,
    TEST_BOXES,
    TEST_HEADS,
    TEST_IMAGES,
    TENSORBOARD_DIR,
    duplicates_path,
    evaluation_dir,
    evaluation_staging_dir,
    manifest_path,
    maps_dir,
    maps_path,
    merge_staging_dir,
    backup_dir,
    model_dir,
    model_card_path,
    shortcut_images_path,
    tensorboard_dir,
    class_mean_maps_path,
    data_profile_path,
    data_thumbnails_path,
    shortcut_summary_path,
    shortcuts_dir,
    heads_path,
    training_run_dir,
)
from bt_core.artifacts.data_profile import DataProfile, load_data_profile, write_data_profile
from bt_core.artifacts.heads import load_test_heads, write_test_heads
from bt_core.artifacts.maps import (
    add_map_shares,
    list_maps,
    load_class_mean_maps,
    load_map_shares,
    load_maps,
    write_class_mean_maps,
    write_maps,
)
from bt_core.artifacts.reader import (
    ModelArtifacts,
    Run,
    RunSummary,
    evaluation_problems,
    list_evaluations,
    list_runs,
    load_manifest,
    load_model,
    load_model_card,
    load_run,
    read_manifest,
)
from bt_core.artifacts.schema import (
    FORMAT_VERSION,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_PENDING,
    STATUS_RUNNING,
    DatasetRecord,
    Evaluation,
    Manifest,
    ModelEntry,
    ShortcutSummary,
    check_format_version,
    check_writable_format,
)
from bt_core.artifacts.shortcuts import (
    load_duplicates,
    load_shortcut_images,
    load_shortcuts,
    write_shortcuts,
)
from bt_core.artifacts.tables import (
    align_predictions,
    keras_file_problem,
    load_test_boxes,
    load_test_ids,
    load_test_images,
    model_files_problem,
    predictions_frame,
    probability_columns,
    read_predictions,
    read_split,
    test_images_header,
    validate_predictions,
)
from bt_core.artifacts.writer import RunWriter, record_skipped, write_test_boxes
from bt_core.artifacts.study import StudyManifest, StudySummary, list_studies, load_study

__all__ = [
    "NoSpaceLeft", "is_disk_full", "naming_a_full_disk", "BACKUP_DIR", "backup_dir", "check_writable_format",
    "ArtifactError", "is_temporary_file", "link_or_copy", "read_json", "remove_temporary_files", "write_csv",
    "write_json", "EVALUATIONS_DIR", "HISTORY", "HISTORY_COLUMNS", "MANIFEST", "MAPS_DIR", "MAPS_SUFFIX",
    "METRICS", "MODEL_FILE", "MODEL_FILES", "MODELS_DIR", "PREDICTIONS", "SHORTCUTS_DIR", "SHORTCUTS_DUPLICATES",
    "SHORTCUTS_SUMMARY", "SPLIT", "SPLIT_COLUMNS", "TEST_BOX_COLUMNS", "TEST_BOXES", "TEST_IMAGES",
    "duplicates_path", "evaluation_dir", "evaluation_staging_dir", "manifest_path", "maps_dir", "maps_path",
    "merge_staging_dir", "model_dir", "shortcut_images_path", "shortcut_summary_path", "shortcuts_dir",
    "training_run_dir", "list_maps", "load_maps", "write_maps", "MAP_SHARE_PREFIX", "MAP_SHARES", "TEST_HEADS",
    "heads_path", "load_test_heads", "write_test_heads", "add_map_shares", "load_map_shares", "ModelArtifacts", "Run", "RunSummary",
    "list_evaluations", "list_runs", "load_manifest", "load_model", "load_run", "read_manifest",
    "FORMAT_VERSION", "STATUS_DONE", "STATUS_FAILED", "STATUS_PENDING", "STATUS_RUNNING", "DatasetRecord",
    "Evaluation", "Manifest", "ModelEntry", "ShortcutSummary", "check_format_version", "load_duplicates",
    "load_shortcut_images", "load_shortcuts", "write_shortcuts", "load_test_boxes",
    "load_test_ids", "load_test_images", "model_files_problem", "predictions_frame", "probability_columns",
    "read_split", "validate_predictions", "align_predictions", "keras_file_problem", "read_predictions",
    "test_images_header", "evaluation_problems", "RunWriter", "record_skipped", "write_test_boxes",
    "MODEL_CARD", "model_card_path", "load_model_card", "TENSORBOARD_DIR", "tensorboard_dir",
    "DataProfile", "load_data_profile", "write_data_profile",
    "class_mean_maps_path", "load_class_mean_maps", "write_class_mean_maps", "data_profile_path",
    "data_thumbnails_path",
    "StudyManifest", "StudySummary", "list_studies", "load_study",
]
