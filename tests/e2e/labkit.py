"""Driving a JupyterLab notebook the way a person does."""
import time

import nbformat


def write_notebook(root, name: str, sources: list[str]) -> str:
    nb = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                       "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, root / name)
    return name


def open_notebook(page, lab, name: str):
    page.goto(f"{lab['url']}/lab/workspaces/{name.split('.')[0]}/tree/{name}"
              f"?reset&token=e2e-lab-token")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
    # the status bar says "Python 3 (ipykernel) | Idle" once the kernel is connected
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]"
        ".some(e => /\\| Idle/.test(e.textContent))", timeout=60_000)


def cell(page, index: int):
    return page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(index)


def run_cell(page, index: int) -> None:
    """Click into the cell and press Shift+Enter; wait until the kernel has taken it."""
    target = cell(page, index)
    for _ in range(3):
        target.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        try:
            wait_until(lambda: target.locator(".jp-InputPrompt").inner_text().strip()
                       not in ("[ ]:", ""), timeout=5)
            return
        except AssertionError:
            continue            # a key press before the kernel was wired up is dropped
    raise AssertionError(f"cell {index} never started")


def output_text(page, index: int) -> str:
    outputs = cell(page, index).locator(".jp-OutputArea-output")
    return "\n".join(outputs.all_inner_texts())


def wait_until(condition, timeout: float = 30.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out waiting in the browser")


def executed(page, index: int) -> bool:
    """The cell finished: its prompt shows a number, not '*'."""
    prompt = cell(page, index).locator(".jp-InputPrompt").inner_text()
    return "[" in prompt and "*" not in prompt and any(ch.isdigit() for ch in prompt)


def start_notebook(page, lab, name: str, cells: list[str]) -> None:
    """Write a notebook whose first cell is %load_ext cfai_magic, open it, run that cell."""
    write_notebook(lab["root"], name, ["%load_ext cfai_magic", *cells])
    open_notebook(page, lab, name)
    run_cell(page, 0)
    wait_until(lambda: executed(page, 0))
