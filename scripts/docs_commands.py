"""`make docs-commands`: the docs' deploy commands, run as a reader would run them, without AWS.

docs/deploying.md marks each block of deploy commands with `<!-- deploy-commands: NAME -->` on the line before
its ```sh fence, and the guided deploy's question table with `<!-- deploy-questions -->`. This copies
the repository's tracked files into a fresh folder (as a clone would have them) and runs each marked
command there with the pinned SAM CLI (the `sam` next to the Python running this: .sam-venv), dummy
credentials and no network: every AWS endpoint, and any proxy, is a closed port on the loopback
address. `sam deploy --guided` gets the table's answers on stdin, in the table's order.

A `sam` command passes when it gets past its configuration to its first AWS call, which then fails
to connect to that closed port: a refused config file, a missing option or a prompt the table does
not list fails the build. Any other command must succeed. `sam build` is not run here: it makes no
AWS call but downloads the functions' wheels, which needs the network; `make sam-check` runs it.
Only the standard library, so either virtualenv can run it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"


def documentation() -> str:
    """The README and every page of docs/, as one text (each marked block is in one page only)."""
    pages = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)


BLOCK = re.compile(r"^<!-- deploy-commands: ([\w-]+) -->\n```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
QUESTIONS_MARK = "<!-- deploy-questions -->"
# A prompt in the question column: `Stack Name [sam-app]`; its name is what comes before " [".
PROMPT = re.compile(r"`([^`\[]+?) \[[^`]*\]`")
BACKTICKED = re.compile(r"`([^`]+)`")
# What SAM CLI printed for each question it asked: "\tStack Name [sam-app]: ".
ASKED = re.compile(r"(?:^|\t)([^\t\n#][^\t\n]*?) \[[^\n]*?\]: ", re.MULTILINE)
# Answers the table describes in words rather than spells out: a reader's own addresses.
SAMPLE_ANSWERS = {
    "ClinicEmail": "reception@clinic.example",
    "AlertEmail": "alerts@clinic.example",
}
# Skipped: it needs the network (pip downloads the wheels); `make sam-check` runs it, with this
# repository's samconfig.toml, as the README's does.
NOT_RUN = {"sam build"}
# botocore's EndpointConnectionError: the first AWS call, past every configuration check.
FIRST_AWS_CALL = 'Could not connect to the endpoint URL: "http://127.0.0.1:{port}/'
TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Question:
    names: tuple[str, ...]  # the prompts one table row covers, without "Parameter "
    answer: str  # what a reader types at each of them ("" for Enter)


def command_blocks(markdown: str) -> dict[str, list[str]]:
    """Each marked block's commands, one per line, comments and blank lines left out."""
    blocks: dict[str, list[str]] = {}
    for name, body in BLOCK.findall(markdown):
        lines = [line.split(" #", 1)[0].strip() for line in body.splitlines()]
        blocks[name] = [line for line in lines if line and not line.startswith("#")]
    return blocks


def prompt_name(prompt: str) -> str:
    return prompt.removeprefix("Parameter ").strip()


def questions(markdown: str) -> list[Question]:
    """The guided deploy's question table, row by row: its prompts and the answer it tells a reader."""
    _, found, after = markdown.partition(QUESTIONS_MARK)
    if not found:
        raise ValueError(f"the docs have no {QUESTIONS_MARK} table")
    rows = [line for line in after.lstrip("\n").splitlines()]
    table = []
    for line in rows:
        if not line.startswith("|"):
            break
        table.append(line)
    found_questions = []
    for row in table[2:]:  # after the header and its rule
        question, answer = (cell.strip() for cell in row.strip("|").split(" | ", 1))
        names = tuple(prompt_name(prompt) for prompt in PROMPT.findall(question))
        if not names:
            raise ValueError(f"a question row names no prompt: {row}")
        found_questions.append(Question(names, typed_answer(names, answer)))
    return found_questions


def typed_answer(names: Sequence[str], answer: str) -> str:
    """What the table's answer cell means at the keyboard."""
    if answer.startswith("Enter"):
        return ""
    spelt = BACKTICKED.findall(answer)
    if spelt:
        return str(spelt[0])
    if names[0] in SAMPLE_ANSWERS:
        return SAMPLE_ANSWERS[names[0]]
    raise ValueError(f"no answer to type for {names[0]}: {answer}")


def keystrokes(table: Sequence[Question]) -> str:
    """stdin for `sam deploy --guided`: each row's answer once for each prompt it covers."""
    return "".join(f"{question.answer}\n" for question in table for _ in question.names)


def asked(output: str) -> list[str]:
    """The questions SAM CLI asked, in order, from what it printed."""
    return [prompt_name(name) for name in ASKED.findall(output)]


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def offline_env(home: Path, sam_bin: Path, port: int) -> dict[str, str]:
    """A shell with dummy credentials, every AWS endpoint and proxy on a closed loopback port."""
    closed = f"http://127.0.0.1:{port}"
    return {
        "PATH": os.pathsep.join([str(sam_bin), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-2",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": closed,
        # One attempt: botocore would retry a refused connection with backoff, for seconds each.
        "AWS_MAX_ATTEMPTS": "1",
        # SAM CLI's version check and anything else that is not an AWS client.
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "NO_PROXY": "127.0.0.1",
        "SAM_CLI_TELEMETRY": "0",
    }


def fresh_copy(destination: Path) -> None:
    """The repository's tracked files, as they are in this checkout (uncommitted edits included)."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z"],  # noqa: S607 - git from PATH, as a developer runs it
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, tracked.split("\0")):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def saved_config(table: Sequence[Question]) -> str:
    """samconfig.local.toml as the guided deploy saves it from the table's answers (a closed port stops the
    guided deploy at its first AWS call, before it saves): what "Later deploys" reads."""
    answers = {name: question.answer for question in table for name in question.names}
    overrides = " ".join(
        f'{name}=\\"{value}\\"'
        for name, value in answers.items()
        if name[0].isupper() and name not in {"Stack Name", "AWS Region"} and " " not in name and value
    )
    return (
        "version = 0.1\n\n[default.deploy.parameters]\n"
        f'stack_name = "{answers["Stack Name"]}"\nresolve_s3 = true\n'
        f'region = "{answers["AWS Region"]}"\nconfirm_changeset = true\n'
        'capabilities = "CAPABILITY_IAM"\n'
        f'parameter_overrides = "{overrides}"\n'
    )


@dataclass(frozen=True)
class Outcome:
    block: str
    command: str
    problem: str  # "" when the command did what the README says it does


@dataclass(frozen=True)
class Sandbox:
    cwd: Path  # the fresh copy
    env: Mapping[str, str]  # offline_env
    port: int  # the closed port every AWS call goes to


def run_command(block: str, command: str, sandbox: Sandbox, stdin: str) -> tuple[Outcome, str]:
    """The command's verdict, and what it printed."""
    completed = subprocess.run(  # noqa: S603 - the README's own command, in a scratch copy, offline
        ["/bin/sh", "-c", command],
        cwd=sandbox.cwd,
        env=dict(sandbox.env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    output = completed.stdout + completed.stderr
    if not command.startswith("sam "):
        problem = "" if completed.returncode == 0 else f"exit {completed.returncode}: {output.strip()[-600:]}"
        return Outcome(block, command, problem), output
    if FIRST_AWS_CALL.format(port=sandbox.port) in output:
        return Outcome(block, command, ""), output
    return Outcome(block, command, f"stopped before its first AWS call: {output.strip()[-1500:]}"), output


def check_questions(table: Sequence[Question], output: str) -> str:
    """What is wrong with the table against the questions SAM CLI asked ("" when they agree)."""
    listed = [name for question in table for name in question.names]
    sam_asked = asked(output)
    if not sam_asked:
        return "SAM CLI asked no question the table could be checked against"
    if listed[: len(sam_asked)] != sam_asked:
        return f"the question table lists {listed[: len(sam_asked)]}, SAM CLI asked {sam_asked}"
    return ""


def run_all(markdown: str, sam_bin: Path) -> list[Outcome]:
    """Run every marked block, in the README's order, in one fresh copy of the repository."""
    table = questions(markdown)
    blocks = command_blocks(markdown)
    if not blocks:
        return [Outcome("README", "", "no <!-- deploy-commands: NAME --> block")]
    outcomes = []
    port = closed_port()
    with tempfile.TemporaryDirectory(prefix="docs-commands-") as scratch:
        copy = Path(scratch) / "repo"
        home = Path(scratch) / "home"
        home.mkdir()
        fresh_copy(copy)
        sandbox = Sandbox(copy, offline_env(home, sam_bin, port), port)
        for block, commands in blocks.items():
            for command in commands:
                if command in NOT_RUN:
                    print(
                        f"docs-commands: {block}: {command}: not run here (make sam-check runs it)",
                        flush=True,
                    )
                    continue
                guided = "--guided" in command.split()
                # A reader answers the guided deploy from the table, and confirms anything else (sam delete).
                outcome, output = run_command(block, command, sandbox, keystrokes(table) if guided else "y\n")
                if guided and not outcome.problem:
                    outcome = Outcome(block, command, check_questions(table, output))
                    # What the guided deploy saves once its deploy gets going, for the commands after it.
                    (copy / "samconfig.local.toml").write_text(saved_config(table), encoding="utf-8")
                outcomes.append(outcome)
                print(f"docs-commands: {block}: {command}: {outcome.problem or 'ok'}", flush=True)
    return outcomes


def main() -> int:
    sam_bin = Path(sys.executable).parent
    if not (sam_bin / "sam").exists():
        raise SystemExit(f"docs-commands: no sam next to {sys.executable}: run it with .sam-venv's Python")
    outcomes = run_all(documentation(), sam_bin)
    failed = [outcome for outcome in outcomes if outcome.problem]
    if failed:
        raise SystemExit(f"docs-commands: {len(failed)} of the docs' deploy commands cannot run as written")
    print(f"docs-commands: passed: {len(outcomes)} commands", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
