"""The notebook's functions as tools, through a real kernel against the fake: the loop in each
dialect, streamed and not; what each request carries; errors that go back to the model;
--max-steps, an interrupt in the middle of a call, --confirm; the history it leaves."""
import json

import pytest

from cfai_magic.cassette import entries
from cfai_magic.testing import Reply
from kernelkit import displays, replaying

GLM = "@cf/zai-org/glm-4.7-flash"            # chat dialect on /ai/run
LLAMA = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"   # legacy dialect, tools flagged
TOOLS = '''
import time
calls = []

def get_weather(city: str, unit: str = "C") -> dict:
    """The weather in a city, now."""
    calls.append(city)
    return {"city": city, "sky": "clear", "temp": 21}

def divide(a: float, b: float) -> float:
    """a divided by b."""
    return a / b

def slow(seconds: float) -> str:
    """Takes its time."""
    print("slow: started", flush=True)
    time.sleep(seconds)
    return "done"
'''
CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}


@pytest.fixture
def k(kernel):
    kernel.run("%load_ext cfai_magic")
    kernel.run(TOOLS)
    return kernel


def final_of(messages):
    return displays(messages)[-1]["content"]


@pytest.mark.parametrize("model", [GLM, LLAMA])
@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_a_two_step_loop(k, fake_workers_ai, model, stream):
    fake_workers_ai.enqueue(Reply(tool_calls=[CALL]), "Clear and 21 C in Paris.")
    flags = "" if stream else "--no-stream"
    messages, reply = k.run(f"%%cfai -m {model} --tools get_weather {flags}\nWeather in Paris?")
    assert reply["content"]["status"] == "ok", reply["content"]
    first, second = fake_workers_ai.asked[-2:]
    assert first.body["stream"] is stream
    [spec] = first.body["tools"]
    fn = spec.get("function", spec)                     # legacy models take it flat
    assert ("function" in spec) == (model == GLM)
    assert fn["name"] == "get_weather" and fn["description"] == "The weather in a city, now."
    assert fn["parameters"]["properties"]["city"] == {"type": "string"}
    assert fn["parameters"]["required"] == ["city"]
    said, result = second.body["messages"][-2:]
    assert said["role"] == "assistant" and said["tool_calls"][0]["function"]["name"] == \
        "get_weather"
    assert json.loads(said["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert result == {"role": "tool", "tool_call_id": said["tool_calls"][0]["id"],
                      "name": "get_weather",
                      "content": '{"city": "Paris", "sky": "clear", "temp": 21}'}
    if model == LLAMA:                                  # no null content for legacy models
        assert json.loads(said["content"]) == {"name": "get_weather",
                                               "parameters": {"city": "Paris"}}
    assert k.value("calls") == "['Paris']" and k.value("_cfai") == "'Clear and 21 C in Paris.'"
    assert k.value("[(s.name, s.arguments, s.error) for s in _cfai_answer.steps]") == \
        "[('get_weather', {'city': 'Paris'}, None)]"
    final = final_of(messages)
    html, plain = final["data"]["text/html"], final["data"]["text/plain"]
    assert html.index('<details class="cfai-step">') < html.index("Clear and 21 C")
    assert "🔧 get_weather(city=&#x27;Paris&#x27;) → {&quot;city&quot;" in html
    assert plain.startswith("🔧 get_weather(city='Paris') → {\"city\": \"Paris\"")
    steps = final["metadata"]["cfai"]["steps"]
    assert [(s["name"], s["arguments"], s["error"]) for s in steps] == [
        ("get_weather", {"city": "Paris"}, None)]


def test_the_openai_protocol(k, fake_workers_ai):
    k.run(f"import os; os.environ['OPENAI_API_KEY'] = {fake_workers_ai.token!r}")
    k.run(f"%cfai backend {fake_workers_ai.openai_url} --protocol openai")
    fake_workers_ai.enqueue(Reply(tool_calls=[CALL]), "Clear.")
    _, reply = k.run(f"%%cfai -m {GLM} --tools get_weather\nWeather in Paris?")
    assert reply["content"]["status"] == "ok", reply["content"]
    assert fake_workers_ai.last.path.endswith("/ai/v1/chat/completions")
    assert fake_workers_ai.last.body["messages"][-1]["role"] == "tool"


def test_bad_arguments_and_a_raising_tool_go_back_to_the_model(k, fake_workers_ai):
    fake_workers_ai.enqueue(
        Reply(tool_calls=[{"name": "divide", "arguments": {"a": "x", "b": 2}},
                          {"name": "divide", "arguments": {"a": 1, "b": 0}}]),
        "I could not divide.")
    _, reply = k.run(f"%%cfai -m {GLM} --tools divide\n1/0?")
    assert reply["content"]["status"] == "ok"
    bad, zero = fake_workers_ai.last.body["messages"][-2:]
    assert bad["content"].startswith("Error: Invalid arguments for divide: a: Input should be "
                                     "a valid number")
    assert zero["content"] == "Error: ZeroDivisionError: float division by zero"
    assert k.value("[s.error is not None for s in _cfai_answer.steps]") == "[True, True]"


def test_max_steps(k, fake_workers_ai):
    fake_workers_ai.enqueue(Reply(tool_calls=[CALL], times=5))
    _, reply = k.run(f"%%cfai -m {GLM} --tools get_weather --max-steps 2\nWeather?")
    assert reply["content"]["ename"] == "StepLimit"
    [line] = reply["content"]["traceback"]
    assert "2 rounds of calls and no answer" in line and "--max-steps" in line
    assert [r.kind for r in fake_workers_ai.requests].count("run") == 3   # 2 rounds, then stop
    assert k.value("calls") == "['Paris', 'Paris']"
    assert k.value("len(__import__('cfai_magic').session.current().store.get().turns)") == "0"


def test_an_interrupt_in_the_middle_of_a_call(k, fake_workers_ai):
    fake_workers_ai.enqueue(Reply(tool_calls=[{"name": "slow", "arguments": {"seconds": 60}}]))
    msg_id = k.send(f"%%cfai -m {GLM} --tools slow\nTake your time")

    def interrupt_when_calling(msg):              # the call says it has begun
        if msg["msg_type"] == "stream" and "slow: started" in msg["content"]["text"]:
            k.km.interrupt_kernel()
    messages, reply = k.collect(msg_id, timeout=30, on_message=interrupt_when_calling)
    assert reply["content"]["ename"] == "Interrupted"
    assert len(reply["content"]["traceback"]) == 1
    assert [r.kind for r in fake_workers_ai.requests].count("run") == 1   # no second request
    _, again = k.run(f"%%cfai -m {GLM}\nstill here?")
    assert again["content"]["status"] == "ok"                # the kernel is fine


def test_confirm_declined(k, fake_workers_ai):
    asked = []

    def the_user_says(word):
        def answer(prompt):
            asked.append(prompt)
            return word
        return answer
    cell = f"%%cfai -m {GLM} --tools get_weather --confirm --new\nWeather in Paris?"
    fake_workers_ai.enqueue(Reply(tool_calls=[CALL]), "You said no.")
    _, reply = k.collect(k.send(cell, allow_stdin=True), answer=the_user_says("n"))
    assert reply["content"]["status"] == "ok"
    assert asked == ["Run get_weather(city='Paris')? [y/N] "]
    assert k.value("calls") == "[]"                          # never called
    assert fake_workers_ai.last.body["messages"][-1]["content"] == \
        "Error: The user declined this call"
    fake_workers_ai.enqueue(Reply(tool_calls=[CALL]), "Clear.")
    k.collect(k.send(cell, allow_stdin=True), answer=the_user_says("y"))
    assert k.value("calls") == "['Paris']"
    fake_workers_ai.enqueue(Reply(tool_calls=[CALL]), "No one to ask.")
    k.run(cell)                                   # a front end without input: declined
    assert k.value("calls") == "['Paris']"


def test_the_history_holds_the_loop_and_a_rerun_replaces_it(k, fake_workers_ai):
    fake_workers_ai.enqueue(Reply(tool_calls=[CALL]), "Clear in Paris.")
    k.run(f"%%cfai -m {GLM} --tools get_weather\nWeather in Paris?", cell_id="cell-1")
    k.run(f"%%cfai -m {LLAMA}\nAnd tomorrow?", cell_id="cell-2")   # a legacy model next
    sent = fake_workers_ai.last.body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
    assert sent[1]["content"] and sent[1]["tool_calls"]        # legacy: never null
    assert sent[3]["content"] == "Clear in Paris."
    fake_workers_ai.enqueue(Reply(tool_calls=[{"name": "get_weather",
                                               "arguments": {"city": "Rome"}}]), "Sunny in Rome.")
    k.run(f"%%cfai -m {GLM} --tools get_weather\nWeather in Rome?", cell_id="cell-1")
    k.run(f"%%cfai -m {GLM}\nThanks", cell_id="cell-3")
    sent = fake_workers_ai.last.body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
    assert "Rome" in sent[2]["content"] and "Paris" not in json.dumps(sent)


def test_a_cassette_replays_the_loop_offline(k, fake_workers_ai, tmp_path):
    cassette = tmp_path / "tools.json"
    k.run(f"%cfai record {cassette}")
    fake_workers_ai.enqueue(Reply(tool_calls=[CALL]), "Clear in Paris.")
    k.run(f"%%cfai -m {GLM} --tools get_weather --once\nWeather in Paris?")
    recorded = entries(cassette)
    assert len(recorded) == 2 and recorded[0]["response"]["tool_calls"][0]["name"] == \
        "get_weather"
    with replaying(cassette, tmp_path, TOOLS) as offline:   # no fake, no credentials
        _, reply = offline.run(f"%%cfai -m {GLM} --tools get_weather --once\nWeather in Paris?")
        assert reply["content"]["status"] == "ok", reply["content"]
        assert offline.value("_cfai") == "'Clear in Paris.'"
        assert offline.value("calls") == "['Paris']"          # the tool really ran again


def test_a_model_without_function_calling_is_refused_before_sending(k, fake_workers_ai):
    _, reply = k.run("%%cfai -m @cf/ibm-granite/granite-4.0-h-micro --tools get_weather\nhi")
    assert reply["content"]["ename"] == "InputError"
    assert "does not call functions; nothing was sent" in reply["content"]["traceback"][0]
    assert not fake_workers_ai.asked
    _, reply = k.run(f"%%cfai -m {GLM} --tools nonesuch\nhi")
    assert "No function named 'nonesuch'" in reply["content"]["traceback"][0]


def test_a_leaked_call_is_read_as_a_call_when_one_was_forced(k, fake_workers_ai):
    """gpt-oss writes a forced call as text (cloudflare/ai #560)."""
    fake_workers_ai.enqueue(Reply(text='{"name": "get_weather", "city": "Oslo"}'), "Cold.")
    k.run("import cfai_magic")
    _, reply = k.run("a = cfai_magic.WorkersAI().run('@cf/openai/gpt-oss-20b', "
                     "messages=[{'role': 'user', 'content': 'weather?'}], tools=[get_weather], "
                     "tool_choice='required')")
    assert reply["content"]["status"] == "ok", reply["content"]
    assert k.value("(a.text, [s.arguments for s in a.steps])") == "('Cold.', [{'city': 'Oslo'}])"


def test_the_panel_runs_the_loop_and_asks_with_buttons(k, fake_workers_ai):
    from kernelkit import Widgets
    widgets = Widgets(k)
    messages, _ = k.run("%cfai panel")
    for msg in messages:
        widgets.feed(msg)
    find = {name: widgets.find(f"cfai-{name}")[0] for name in
            ("input", "send", "status", "tools", "confirm-calls", "asking", "yes", "transcript")}
    widgets.set(find["tools"], value="get_weather")
    fake_workers_ai.enqueue(Reply(tool_calls=[CALL]), "Clear in Paris.")
    widgets.set(find["input"], value="Weather in Paris?")
    widgets.click(find["send"])
    widgets.pump(lambda ws: ws.state[find["status"]].get("value", "").startswith("✓"))
    assert k.value("calls") == "['Paris']"
    html = " ".join(s.get("value", "") for s in widgets.state.values()
                    if "cfai-steps" in s.get("_dom_classes", []))
    assert 'class="cfai-step"' in html and "get_weather(city=&#x27;Paris&#x27;)" in html
    assert fake_workers_ai.last.body["messages"][-1]["role"] == "tool"
    # with "Ask before each call": the question shows, and Run it runs it
    widgets.set(find["confirm-calls"], value=True)
    fake_workers_ai.enqueue(Reply(tool_calls=[{"name": "get_weather",
                                               "arguments": {"city": "Rome"}}]), "Sunny.")
    widgets.set(find["input"], value="And Rome?")
    widgets.click(find["send"])
    asking = find["asking"]
    widgets.pump(lambda ws: (ws.state.get(ws.state[asking]["layout"].replace("IPY_MODEL_", ""),
                                          {}).get("display") == "flex"))
    widgets.click(find["yes"])
    widgets.pump(lambda ws: ws.state[find["status"]].get("value", "").startswith("✓")
                 and [r.kind for r in fake_workers_ai.requests].count("run") == 4)
    assert k.value("calls") == "['Paris', 'Rome']"


def test_map_runs_the_loop_for_each_row(k, fake_workers_ai):
    def script(request):
        if request.body["messages"][-1]["role"] == "tool":
            return Reply(text="Answered " + request.body["messages"][0]["content"])
        city = request.body["messages"][0]["content"].split()[-1]
        return Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": city}}])
    fake_workers_ai.default = script
    cities = [f"City{i}" for i in range(20)]
    _, reply = k.run(f"out = __import__('cfai_magic').map('Weather in {{row}}', {cities!r}, "
                     f"model='{GLM}', tools=[get_weather])", timeout=120)
    assert reply["content"]["status"] == "ok", reply["content"]
    got = eval(k.value("out"))
    assert got == [f"Answered Weather in {c}" for c in cities], got
    assert eval(k.value("sorted(calls)")) == sorted(cities)
    assert k.value("_cfai_batch.stats.failed") == "0"
