"""Makes the shared keras.applications checks (`_kparity`) importable from every family test."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
