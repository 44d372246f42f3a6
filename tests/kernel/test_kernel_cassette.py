"""Two real kernels recording into one cassette at the same time, then all of it replayed."""
from cfai_magic.cassette import entries
from kernelkit import Kernel, replaying

ASK = ("right = 0\n"
       "for n in {who}:\n"
       "    for i in range(50):\n"
       "        q = f'kernel{{n}} question {{i}}'\n"
       "        get_ipython().run_cell_magic('cfai', '-m llama2 --once', q)\n"
       "        right += _cfai == 'Echo: ' + q\n")


def test_two_kernels_record_into_one_cassette(fake_workers_ai, tmp_path):
    cassette = tmp_path / "shared.json"
    kernels = [Kernel(fake_workers_ai.env(), cwd=str(tmp_path)) for _ in range(2)]
    try:
        for k in kernels:
            k.run("%load_ext cfai_magic")
            k.run(f"%cfai record {cassette}")
        sent = [k.send(ASK.format(who=[n])) for n, k in enumerate(kernels)]   # at once
        for k, msg_id in zip(kernels, sent):
            _, reply = k.collect(msg_id, timeout=300)
            assert reply["content"]["status"] == "ok", reply["content"]
            assert k.value("right") == "50"
    finally:
        for k in kernels:
            k.close()
    recorded = entries(cassette)
    prompts = {e["request"]["body"]["prompt"] for e in recorded}
    assert len(recorded) == 100 and len(prompts) == 100
    fake_workers_ai.stop()                      # offline, no credentials: every one replays
    with replaying(cassette, tmp_path) as offline:
        _, reply = offline.run(ASK.format(who=[0, 1]) + "assert _cfai_answer.replayed",
                               timeout=300)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert offline.value("right") == "100"
