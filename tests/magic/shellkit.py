"""Helpers for running cells in an InteractiveShell and reading what they showed."""
from types import SimpleNamespace

from IPython.utils.capture import capture_output


class Run(SimpleNamespace):
    @property
    def finals(self):
        """The final display of each streamed answer (the last update of each display id)."""
        last = {}
        for out in self.outputs:
            last[out["transient"].get("display_id")] = out
        return list(last.values())

    @property
    def final(self):
        return self.finals[-1]


def run(shell, source: str) -> Run:
    """Run a cell; return its result, outputs (raw publish calls) and printed text."""
    with capture_output() as cap:
        result = shell.run_cell(source)
    return Run(result=result, outputs=cap._outputs, stdout=cap.stdout, error=result.error_in_exec)


def cfai(shell, line: str = "", cell: str = "hi") -> Run:
    return run(shell, f"%%cfai {line}\n{cell}")


def set_cell_id(shell, cell_id):
    """What ipykernel gives the magic: the execute request's metadata (JupyterLab's cellId)."""
    parent = {"metadata": {"cellId": cell_id}}
    shell.kernel = SimpleNamespace(get_parent=lambda channel=None: parent)


def session(shell):
    """The Session behind the shell's %cfai."""
    return shell.magics_manager.registry["CfaiMagics"].session
