"""bt_dashboard.widget_state.offered_choice: what a widget keeps when another run is picked."""

from bt_dashboard.widget_state import FORGET, offered_choice


def test_a_single_value_is_kept_only_while_offered():
    assert offered_choice("glioma", ["glioma", "notumor"]) == "glioma"
    assert offered_choice("vgg16", ["resnet50"]) is FORGET


def test_a_list_keeps_the_values_still_offered_in_its_order():
    assert offered_choice(["c", "a", "b"], ["a", "b", "d"]) == ["a", "b"]


def test_a_list_left_with_nothing_falls_back_to_the_default_but_a_cleared_one_stays_empty():
    assert offered_choice(["simple_cnn", "cnn_bn"], ["resnet50", "vgg16"]) is FORGET
    assert offered_choice([], ["resnet50"]) == []
