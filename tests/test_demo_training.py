"""demo/train.py: the caption mix it trains on, the trainable text encoder, and a run
that resumes exactly."""
import pytest
import torch

from concept_attention.demo import scenes, train


@pytest.mark.unit
def test_short_captions_name_each_object_and_the_background():
    short = scenes.short_captions([("red", "circle"), ("orange", "star")], "floor")
    assert short == ["floor", "red", "circle", "a red circle", "a red circle on a wooden floor",
                     "orange", "star", "an orange star", "an orange star on a wooden floor"]


def _data(scene_count=8, width=5):
    """What cache_latents stores, for random latents and captions."""
    gen = torch.Generator().manual_seed(0)
    captions = 3 * scene_count + 1
    short_index = torch.randint(scene_count, 3 * scene_count, (scene_count, width), generator=gen)
    short_index[::2, -2:] = -1                               # scenes with fewer short captions
    return {"latents": torch.randn(scene_count, 16, 16, 16, generator=gen).half(),
            "caption_index": torch.arange(scene_count), "short_index": short_index,
            "cond": torch.randn(captions, 8, train.TEXT_DIM, generator=gen),
            "pooled": torch.zeros(captions, train.TEXT_DIM), "empty_index": captions - 1,
            "captions": [scenes.caption_for([(colour, shape)], "grass")
                         for colour in scenes.COLOURS for shape in scenes.SHAPES][:captions - 1] + [""]}


def _shipped_clip():
    from concept_attention.demo import model as demo_model
    return demo_model.build_clip(train.TEXT_CONFIG, demo_model.DEFAULT_DIR / "text_encoder.safetensors")


@pytest.mark.model
def test_the_trainable_t5_forward_is_comfyuis_and_trains_the_word_vectors():
    clip = _shipped_clip()
    captions = ["a red circle on grass", "red", "a white heart and a purple cross in the sky", ""]
    ids = train.caption_token_ids(clip, captions)
    expected, _ = train.encode_captions(clip, captions)
    torch.testing.assert_close(train.t5_forward(clip, ids), expected, atol=1e-5, rtol=1e-5)
    embeddings = train.t5_of(clip).shared.weight
    embeddings.requires_grad_(True)
    train.t5_forward(clip, ids[:1]).square().sum().backward()
    touched = embeddings.grad.abs().sum(dim=1).nonzero().flatten()
    assert set(touched.tolist()) == set(ids[0].tolist())       # the caption's own tokens, and only they


@pytest.mark.unit
def test_captions_are_full_short_or_empty_in_the_asked_proportions():
    data = _data()
    idx = torch.arange(8).repeat(500)
    picked = train.pick_captions(data, idx, torch.Generator().manual_seed(1), drop=0.1, short=0.3)
    empty = picked == data["empty_index"]
    full = picked == data["caption_index"][idx]
    short = ~empty & ~full
    assert (picked >= 0).all()
    # Each picked short caption is one of that scene's own.
    assert ((data["short_index"][idx] == picked[:, None]).any(dim=1) | ~short).all()
    assert empty.float().mean().item() == pytest.approx(0.1, abs=0.02)
    assert short.float().mean().item() == pytest.approx(0.3, abs=0.03)


@pytest.fixture
def tiny_dit(monkeypatch):
    monkeypatch.setitem(train.DIT_CONFIG, "hidden_size", 64)
    monkeypatch.setitem(train.DIT_CONFIG, "num_heads", 1)
    monkeypatch.setitem(train.DIT_CONFIG, "axes_dim", [8, 28, 28])
    monkeypatch.setitem(train.DIT_CONFIG, "depth", 1)
    monkeypatch.setitem(train.DIT_CONFIG, "depth_single_blocks", 1)


@pytest.mark.model
@pytest.mark.parametrize("train_text", [None, "all"])
def test_an_interrupted_run_resumes_to_the_same_weights(tiny_dit, tmp_path, monkeypatch, train_text):
    data, log = _data(), train.Log(tmp_path / "log")

    def run(directory, save_minutes):
        """A run from the start or from its checkpoint; a text encoder of its own (training changes it)."""
        return train.train_dit(tmp_path / directory, data, log, 6, save_minutes=save_minutes, batch=2, warmup=2,
                               log_every=100, train_text=train_text, clip=_shipped_clip() if train_text else None)

    whole = run("whole", 1e9)

    class Interrupted(Exception):
        pass

    saved = []
    real_save = torch.save

    def save_then_interrupt(obj, path, *args, **kw):
        real_save(obj, path, *args, **kw)
        saved.append(obj.get("step") if isinstance(obj, dict) else None)
        if len(saved) == 3:
            raise Interrupted

    monkeypatch.setattr(torch, "save", save_then_interrupt)
    with pytest.raises(Interrupted):
        run("resumed", 0)
    monkeypatch.setattr(torch, "save", real_save)
    assert saved == [1, 2, 3]
    resumed = run("resumed", 1e9)
    assert "resumed at step 3" in (tmp_path / "log").read_text()
    assert resumed["steps"] == whole["steps"] == 6
    assert resumed["losses"] == whole["losses"]
    for name, value in whole["ema"].items():
        assert torch.equal(resumed["ema"][name], value), name
    text_names = set(train.TEXT_PARTS["all"](train.t5_of(_shipped_clip()))) if train_text else set()
    assert set(resumed["ema_text"]) == set(whole["ema_text"]) == text_names
    for name, value in whole["ema_text"].items():
        assert torch.equal(resumed["ema_text"][name], value), name
