"""images.py: what is an image, how it is made ready (orientation, limits), digests; and how a
conversation's history sends images again."""
import io

import numpy as np
import pytest
from PIL import Image

from cfai_magic import images
from cfai_magic.catalog import Catalog
from cfai_magic.state import HISTORY_IMAGES, Conversation


def png(size=(20, 10), colour="red", mode="RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, "PNG")
    return out.getvalue()


def test_small_images_are_sent_as_they_came():
    data = png()
    picture = images.picture_of(data)
    assert picture.data == data and picture.mime == "image/png" and picture.scaled_from is None


def test_exif_orientation_is_honoured():
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6                                  # "rotate 90° clockwise to show"
    Image.new("RGB", (40, 20), "white").save(out, "JPEG", exif=exif)
    picture = images.picture_of(out.getvalue())
    assert (picture.width, picture.height) == (20, 40)
    assert Image.open(io.BytesIO(picture.data)).getexif().get(0x0112, 1) == 1


def test_limits_of_side_and_bytes():
    noise = Image.fromarray((np.random.default_rng(0).random((900, 1200, 3)) * 255)
                            .astype(np.uint8))
    picture = images.prepare(noise, max_side=600, max_bytes=60_000)
    assert max(picture.width, picture.height) <= 600 and len(picture.data) <= 60_000
    assert picture.mime == "image/jpeg" and picture.scaled_from == (1200, 900)
    drawing = images.prepare(Image.new("RGBA", (3000, 100), (0, 0, 0, 0)))
    assert drawing.mime == "image/png" and drawing.width == images.MAX_SIDE   # a plot stays PNG


@pytest.mark.parametrize("value", [b"plain bytes", "a string", "missing.png", 42,
                                   np.zeros((4, 4)), np.zeros((4, 4, 5), np.uint8), [1, 2]])
def test_what_is_not_an_image(value):
    assert images.picture_of(value) is None


def test_sniffing_and_digests():
    assert images.sniff(b"GIF89a....") == "image/gif"
    assert images.sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    part = images.picture_of(png()).part()
    kept = images.digested({"messages": [{"role": "user", "content": [part]}]})
    url = kept["messages"][0]["content"][0]["image_url"]
    assert url["url"].startswith("sha256:") and (url["width"], url["height"]) == (20, 10)
    assert images.digested(kept) == kept                   # a cassette's keys are stable


def _turn_with_image(conversation, plan_model, n):
    part = images.picture_of(png((10 + n, 10))).part()
    plan = conversation.plan([{"role": "user", "content": [{"type": "text", "text": "see"},
                                                           part]}], model=plan_model)
    conversation.commit(plan, f"answer {n}")


def test_history_resends_the_newest_images_and_none_to_a_model_that_cannot_see():
    catalog = Catalog()
    gemma, glm = catalog.resolve("gemma4"), catalog.resolve("glm")
    chat = Conversation("c")
    for n in range(HISTORY_IMAGES + 2):
        _turn_with_image(chat, gemma, n)
    plan = chat.plan([{"role": "user", "content": "and?"}], model=gemma)
    sent = [images.pictures_in([m]) for m in plan.messages]
    assert sum(len(p) for p in sent) == HISTORY_IMAGES
    assert [p[0].width for p in sent if p] == [10 + n for n in range(2, HISTORY_IMAGES + 2)]
    assert "Sent the newest 4 of the 6 images of earlier turns" in plan.notices[-1]
    plan = chat.plan([{"role": "user", "content": "and?"}], model=glm)
    assert images.pictures_in(plan.messages) == []
    assert "cannot see images" in plan.notices[-1]
