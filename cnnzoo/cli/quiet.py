"""Keep TensorFlow's C++ log lines off the command line's stderr (`--debug` / `--verbose` show them).

TF_CPP_MIN_LOG_LEVEL hides most of TensorFlow's own C++ logging, but not what is written before absl's logging
starts (the "All log messages before absl::InitializeLog()" warning, oneDNN, cudart, cuInit), nor the TFLite
converter's and runtime's lines (SavedModel reader, "fully_quantize: ...", "Created TensorFlow Lite XNNPACK
delegate"). Those are written by C++ straight to file descriptor 2, so `filtered_stderr` points fd 2 at a pipe
read by a small filter process that drops lines of those shapes and passes every other byte through. A separate
process rather than a thread: if TensorFlow aborts, the filter still delivers what was written before the crash
(a fatal "F..." line is never dropped).
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys

#: Lines dropped (matched at the start of a line): absl/glog lines of severity I, W, E (never F), the absl
#: pre-init warning, TensorFlow's CPU-feature note, TFLite's runtime and converter chatter.
NOISE = (r"(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ :\]]+:\d+\] "
         r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR\r?\n"
         r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
         r"|INFO: (?:Created|Initialized) TensorFlow Lite"
         r"|fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, output_inference_type: \w+\r?\n)")

# The filter: raw bytes in, lines out ("\r" ends a line too, so progress bars pass at once); ignores Ctrl-C so
# the output of the interrupted command still arrives.
_FILTER = r"""
import os, re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
noise, out, rest = re.compile(sys.argv[1].encode()), sys.stderr.buffer, b""
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    *lines, rest = re.split(rb"(?<=[\r\n])", rest + chunk)
    for line in lines:
        if not noise.match(line):
            out.write(line)
    out.flush()
if rest and not noise.match(rest):
    out.write(rest)
    out.flush()
"""


def quiet_environment(environ=os.environ) -> None:
    """Ask TensorFlow and gRPC for errors only; values the user set are kept. Effective before TF is imported."""
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    environ.setdefault("GRPC_VERBOSITY", "ERROR")


@contextlib.contextmanager
def filtered_stderr():
    """Within the block, lines matching NOISE written to fd 2 (by C++ or Python) are dropped."""
    if os.name != "posix":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):   # no usable fd 2 (closed, or stderr replaced)
        yield
        return
    try:
        process = subprocess.Popen([sys.executable, "-I", "-S", "-c", _FILTER, NOISE], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, close_fds=True)
    except OSError:
        os.close(saved)
        yield
        return
    os.dup2(process.stdin.fileno(), 2)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)   # a child process still holding the pipe: leave the filter to finish
