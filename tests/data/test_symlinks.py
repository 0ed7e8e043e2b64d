"""from_directory and symbolic links: every real folder walked once, no image counted twice or under another
class, dangling links reported as such."""
from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image

from cnnzoo.data import from_directory

from .conftest import identity, solid


def write(folder, label: int, count: int) -> None:
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        Image.fromarray(solid(identity(label, i))).save(os.path.join(folder, f"{i:03d}.png"))


def test_loops_cross_class_links_and_dangling_links(tmp_path):
    root = tmp_path / "ds"
    write(root / "cat", 0, 3)
    write(root / "dog", 1, 2)
    write(tmp_path / "extra_cats", 2, 10)          # outside the dataset, linked in: counts under "cat"
    os.makedirs(root / "cat" / "deep")
    os.symlink(root / "cat", root / "cat" / "deep" / "loop")           # a loop
    os.symlink(root / "dog", root / "cat" / "dogs")                    # another class's folder
    os.symlink(root / "dog" / "000.png", root / "cat" / "a_dog.png")   # another class's image
    os.symlink(tmp_path / "extra_cats", root / "cat" / "more")
    os.symlink(tmp_path / "extra_cats", root / "dog" / "more_again")   # the same folder linked twice
    os.symlink(tmp_path / "nowhere", root / "dog" / "gone")            # dangling
    os.symlink(tmp_path / "missing.png", root / "dog" / "gone.png")    # dangling
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = from_directory(root, image_size=8, batch_size=64, validation_split=0.0, shuffle=False)

    assert data.class_counts == {"cat": 3 + 10, "dog": 2}
    images, labels = next(iter(data.train))
    seen = sorted(zip(labels.numpy().tolist(), images.numpy()[:, 0, 0, 0].tolist()))
    cats = [identity(0, i) for i in range(3)] + [identity(2, i) for i in range(10)]
    assert seen == [(0, v) for v in cats] + [(1, identity(1, i)) for i in range(2)]   # no duplicate, no relabel

    reasons = {os.path.relpath(path, root): reason for path, reason in data.skipped}
    assert "dangling" in reasons["dog/gone"] and "dangling" in reasons["dog/gone.png"]
    for link in ("cat/deep/loop", "cat/dogs", "dog/more_again"):
        assert "already listed" in reasons[link], (link, reasons[link])
    assert "same file" in reasons["cat/a_dog.png"]


def test_a_link_to_a_folder_holding_the_dataset_is_not_followed(tmp_path):
    root = tmp_path / "ds"
    write(root / "cat", 0, 2)
    write(root / "dog", 1, 2)
    Image.fromarray(solid(200)).save(tmp_path / "stray.png")      # beside the dataset: no class's image
    os.symlink(tmp_path, root / "dog" / "up")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = from_directory(root, image_size=8, batch_size=8, validation_split=0.0, shuffle=False)
    assert data.class_counts == {"cat": 2, "dog": 2}
    reason = f"symbolic link not followed (it points to {os.path.realpath(tmp_path)!r}, which holds the dataset)"
    assert [entry for entry in data.skipped if "holds the dataset" in entry[1]] == [(str(root / "dog" / "up"), reason)]


def test_a_class_folder_that_is_a_link_is_followed(tmp_path):
    write(tmp_path / "store" / "cats", 0, 2)
    write(tmp_path / "ds" / "dog", 1, 3)
    os.symlink(tmp_path / "store" / "cats", tmp_path / "ds" / "cat")
    data = from_directory(tmp_path / "ds", image_size=8, batch_size=8, validation_split=0.0, shuffle=False)
    assert data.class_counts == {"cat": 2, "dog": 3} and data.skipped == []
    assert np.bincount(next(iter(data.train))[1].numpy()).tolist() == [2, 3]
