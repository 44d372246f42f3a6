"""Conversation: plans, commits that merge, rewinds, fresh starts."""
from cfai_magic.state import Conversation

ASK = [{"role": "user", "content": "q"}]


def answers(chat):
    return [t.answer for t in chat.turns]


def test_turns_added_while_an_answer_streams_are_kept():
    chat = Conversation("c")
    slow = chat.plan([{"role": "user", "content": "panel"}])       # the panel starts
    for name in ("cell 1", "cell 2"):                               # two cells finish meanwhile
        chat.commit(chat.plan([{"role": "user", "content": name}]), f"answer {name}")
    chat.commit(slow, "answer panel")                               # then the panel
    assert answers(chat) == ["answer cell 1", "answer cell 2", "answer panel"]


def test_a_rerun_replaces_its_cells_turn_and_what_followed_then_only():
    chat = Conversation("c")
    for cell in ("a", "b", "c"):
        chat.commit(chat.plan(ASK, cell_id=cell), cell)
    rerun = chat.plan(ASK, cell_id="b")
    assert rerun.rewound == 2 and [t.answer for t in rerun.base] == ["a"]
    chat.commit(chat.plan(ASK, cell_id="d"), "d")                   # arrives while b re-runs
    chat.commit(rerun, "b2")
    assert answers(chat) == ["a", "d", "b2"]


def test_fresh_replaces_what_there_was_when_it_started():
    chat = Conversation("c")
    chat.commit(chat.plan(ASK), "old")
    fresh = chat.plan(ASK, fresh=True)
    assert fresh.messages == ASK
    chat.commit(chat.plan(ASK), "meanwhile")
    chat.commit(fresh, "new")
    assert answers(chat) == ["meanwhile", "new"]


def test_two_plans_from_the_same_base_both_land():
    chat = Conversation("c")
    one, two = chat.plan(ASK), chat.plan(ASK)
    chat.commit(two, "two")
    chat.commit(one, "one")
    assert answers(chat) == ["two", "one"]


def test_a_stopped_answer_is_kept_marked_and_replaced_by_its_rerun():
    chat = Conversation("c")
    chat.commit(chat.plan(ASK, cell_id="a"), "what came bef", interrupted=True)
    assert chat.turns[0].interrupted
    assert chat.messages()[-1] == {"role": "assistant", "content": "what came bef"}
    chat.commit(chat.plan(ASK, cell_id="a"), "the whole answer")          # run again
    assert answers(chat) == ["the whole answer"] and not chat.turns[0].interrupted


def test_reset_while_an_answer_arrives_wins():
    chat = Conversation("c", system="be brief")
    chat.commit(chat.plan(ASK), "one")
    slow = chat.plan(ASK)
    chat.reset()
    assert chat.commit(slow, "late") is None
    assert chat.turns == [] and chat.system is None
    chat.commit(chat.plan(ASK), "after")                                  # a new plan lands
    assert answers(chat) == ["after"]


def test_the_interrupt_hint_says_what_was_kept():
    from cfai_magic.errors import Interrupted, StreamError
    assert "kept in the conversation" in Interrupted(partial="some").hint
    assert Interrupted(partial="").hint.startswith("Nothing had arrived")
    assert StreamError("cut", partial="").hint.startswith("Nothing had arrived")
    assert "partial answer is kept" in StreamError("cut", partial="x").hint
    late = StreamError("cut")                    # the partial text is known only at the end
    late.partial = "some"
    assert "partial answer is kept" in str(late)
