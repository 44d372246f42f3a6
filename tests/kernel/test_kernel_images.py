"""Images from the notebook, through a real kernel against the fake: each kind arrives as one
decodable image part of the expected size, in its place among the text; large photos are
scaled; models that cannot see refuse before sending; Llama 3.2 Vision's own field and license
line; the history; a cassette of images; a batch over images."""
import base64
import io
import json

import pytest
from PIL import Image

from kernelkit import displays, replaying

GEMMA = "@cf/google/gemma-4-26b-a4b-it"
SETUP = '''
import pathlib
import numpy as np
from PIL import Image
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import Image as Shown

pil = Image.new("RGB", (64, 48), "teal")
fig = plt.figure(figsize=(2, 1), dpi=100); plt.plot([0, 1, 2], [0, 1, 0])
array = np.zeros((30, 40, 3), dtype=np.uint8); array[:, :20] = 255
buffer = __import__("io").BytesIO(); Image.new("RGB", (20, 10), "red").save(buffer, "PNG")
png = buffer.getvalue()
path = pathlib.Path("picture.png"); Image.new("RGB", (33, 22), "blue").save(path)
shown = Shown(data=png)
photo = Image.fromarray((np.random.default_rng(1).random((3000, 4000, 3)) * 255).astype("uint8"))
'''
SIZES = {"pil": (64, 48), "fig": (200, 100), "array": (40, 30), "png": (20, 10),
         "path": (33, 22), "shown": (20, 10), "plt": (200, 100)}


@pytest.fixture
def k(kernel):
    kernel.run("%load_ext cfai_magic")
    _, reply = kernel.run(SETUP)
    assert reply["content"]["status"] == "ok", reply["content"]
    return kernel


def decoded(part) -> Image.Image:
    url = part["image_url"]["url"]
    head, data = url.split(",", 1)
    assert head.startswith("data:image/") and head.endswith(";base64")
    return Image.open(io.BytesIO(base64.b64decode(data)))


@pytest.mark.parametrize("name", list(SIZES))
def test_each_kind_arrives_as_one_image_part_in_its_place(k, fake_workers_ai, name):
    _, reply = k.run(f"%%cfai -m {GEMMA}\nBefore {{{name}}} after.")
    assert reply["content"]["status"] == "ok", reply["content"]
    content = fake_workers_ai.last.body["messages"][-1]["content"]
    assert [p["type"] for p in content] == ["text", "image_url", "text"]
    assert content[0]["text"] == "Before " and content[2]["text"] == " after."
    width, height = decoded(content[1]).size
    if name in ("fig", "plt"):      # 2 x 1 inches at 100 dpi, cropped to what is drawn
        assert 150 <= width <= 260 and 80 <= height <= 160, (width, height)
    else:
        assert (width, height) == SIZES[name]


def test_a_large_photo_arrives_scaled_within_the_limit_and_says_so(k, fake_workers_ai):
    from cfai_magic.images import MAX_BYTES, MAX_SIDE
    messages, reply = k.run(f"%%cfai -m {GEMMA} --once\nDescribe {{photo}}")
    assert reply["content"]["status"] == "ok"
    [part] = [p for p in fake_workers_ai.last.body["messages"][-1]["content"]
              if p["type"] == "image_url"]
    image = decoded(part)
    assert max(image.size) == MAX_SIDE and image.size == (2048, 1536)
    assert len(base64.b64decode(part["image_url"]["url"].split(",")[1])) <= MAX_BYTES
    final = displays(messages)[-1]["content"]
    assert "Scaled an image from 4000×3000 to 2048×1536" in final["data"]["text/plain"]
    assert 'class="cfai-thumb"' in final["data"]["text/html"]            # a thumbnail
    [about] = final["metadata"]["cfai"]["images"]
    assert (about["width"], about["height"]) == (2048, 1536) and len(about["sha256"]) == 64
    assert "base64" not in json.dumps(final["metadata"])                  # never the pixels


def test_a_model_that_cannot_see_and_the_local_backend_refuse_before_sending(k, fake_workers_ai):
    _, reply = k.run("%%cfai -m glm\nWhat is {pil}?")
    assert reply["content"]["ename"] == "InputError"
    [line] = reply["content"]["traceback"]
    assert "@cf/zai-org/glm-4.7-flash cannot see images; nothing was sent" in line
    assert GEMMA in line                                        # the models that can
    k.run("%cfai backend local")
    _, reply = k.run("%%cfai\nWhat is {pil}?")
    [line] = reply["content"]["traceback"]
    assert "the embedded local model cannot see images" in line
    assert not fake_workers_ai.asked
    assert k.value("__import__('cfai_magic.local.runtime').local.runtime.read_record()") == \
        "None"                                                  # nor was it started


def test_llama_vision_gets_its_own_field_and_the_license_line(k, fake_workers_ai):
    fake_workers_ai.enqueue(status=403, code=5016, message="Model Agreement required")
    _, reply = k.run("%%cfai -m llama-vision --once\nWhat is {png}?")
    assert reply["content"]["ename"] == "LicenseRequired"
    [line] = reply["content"]["traceback"]
    assert "Model Agreement required" in line and "'agree'" in line
    body = fake_workers_ai.last.body
    assert isinstance(body["messages"][-1]["content"], str)     # text, and the image apart
    assert bytes(body["image"]).startswith(b"\x89PNG") and len(body["image"]) == len(
        eval(k.value("png")))


def test_the_next_turn_carries_the_image_in_its_history(k, fake_workers_ai):
    k.run(f"%%cfai -m {GEMMA}\nWhat colour is {{pil}}?")
    k.run(f"%%cfai -m {GEMMA}\nAnd its shape?")
    first = fake_workers_ai.last.body["messages"][0]["content"]
    assert [p["type"] for p in first] == ["text", "image_url", "text"]
    assert decoded(first[1]).size == (64, 48)
    messages, _ = k.run("%cfai history")
    printed = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
    assert "user: What colour is [image 64×48," in printed


def test_a_cassette_with_images_replays_offline_and_stays_small(k, fake_workers_ai, tmp_path):
    cassette = tmp_path / "images.json"
    k.run(f"%cfai record {cassette}")
    fake_workers_ai.enqueue("A teal rectangle.", "A photo of noise.")
    k.run(f"%%cfai -m {GEMMA} --once\nWhat is {{pil}}?")
    k.run(f"%%cfai -m {GEMMA} --once\nWhat is {{photo}}?")
    size = cassette.stat().st_size
    assert size < 2 * 5000, size                                # under 5 kB an image
    assert "base64" not in cassette.read_text()
    with replaying(cassette, tmp_path, SETUP) as offline:
        _, reply = offline.run(f"%%cfai -m {GEMMA} --once\nWhat is {{photo}}?")
        assert reply["content"]["status"] == "ok", reply["content"]
        assert offline.value("_cfai") == "'A photo of noise.'"


def test_map_over_twenty_images(k, fake_workers_ai):
    _, reply = k.run(
        "import pandas as pd\n"
        "frame = pd.DataFrame({'img': [Image.new('RGB', (8 + i, 8), (i * 10, 0, 0)) "
        "for i in range(20)]})\n"
        f"captions = __import__('cfai_magic').map('Caption: {{img}}', frame, model='{GEMMA}')")
    assert reply["content"]["status"] == "ok", reply["content"]
    sizes = sorted(decoded(r.body["messages"][-1]["content"][1]).size[0]
                   for r in fake_workers_ai.requests if r.kind == "run")
    assert sizes == [8 + i for i in range(20)]
    assert k.value("bool(captions.str.startswith('Echo: Caption: [image').all())") == "True"
    assert k.value("_cfai_batch.stats.answered") == "20"
