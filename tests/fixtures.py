"Tiny datasets in their real on-disk formats, for the tests that run real-data configs end to end."
import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

_RNG = np.random.default_rng(0)


def _image(path, width=64, height=48):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_RNG.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)


def write_refcoco(root, images, n=12, dataset="refcoco", split_by="unc", splits=("train", "val", "testA")):
    "A RefCOCO-family fixture in the REFER layout: <root>/<dataset>/refs(<split_by>).p (protocol 2, as released) and instances.json."
    folder = Path(root) / dataset
    folder.mkdir(parents=True, exist_ok=True)
    imgs, anns, refs = [], [], []
    for i in range(n):
        _image(Path(images) / f"{i}.jpg")
        imgs.append({"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 48})
        anns.append({"id": 100 + i, "image_id": i, "category_id": 1, "bbox": [4 + i, 6, 20, 18], "area": 360, "iscrowd": 0})
        refs.append({"ref_id": i, "ann_id": 100 + i, "image_id": i, "split": splits[i % len(splits)],
                     "sentences": [{"sent": "the circle on the left"}, {"sent": "left circle"}]})
    (folder / "instances.json").write_text(json.dumps({"images": imgs, "annotations": anns,
                                                      "categories": [{"id": 1, "name": "circle"}]}))
    with open(folder / f"refs({split_by}).p", "wb") as f: pickle.dump(refs, f, protocol=2)


def write_flickr30k(root, images, per_split=2):
    "A Flickr30k Entities fixture: Sentences/<id>.txt, Annotations/<id>.xml and train/val/test.txt, two captions an image."
    root, images = Path(root), Path(images)
    (root / "Sentences").mkdir(parents=True, exist_ok=True)
    (root / "Annotations").mkdir(exist_ok=True)
    k = 0
    for split in ("train", "val", "test"):
        ids = []
        for _ in range(per_split):
            ids.append(str(1000 + k))
            _image(images / f"{1000 + k}.jpg", 100, 80)
            (root / "Sentences" / f"{1000 + k}.txt").write_text(
                "[/EN#1/people Two men] throw [/EN#2/other a ball] .\n[/EN#1/people Two young men] play .\n")
            (root / "Annotations" / f"{1000 + k}.xml").write_text(
                "<annotation><size><width>100</width><height>80</height></size>"
                f"<object><name>1</name><bndbox><xmin>{1 + k}</xmin><ymin>11</ymin><xmax>31</xmax><ymax>71</ymax></bndbox></object>"
                "<object><name>1</name><bndbox><xmin>51</xmin><ymin>11</ymin><xmax>81</xmax><ymax>71</ymax></bndbox></object>"
                "<object><name>2</name><bndbox><xmin>41</xmin><ymin>5</ymin><xmax>46</xmax><ymax>10</ymax></bndbox></object>"
                "</annotation>")
            k += 1
        (root / f"{split}.txt").write_text("\n".join(ids) + "\n")


def write_coco(root, splits=(("train2017", 4), ("val2017", 8))):
    "A COCO fixture: <root>/annotations/instances_<split>.json and <root>/<split>/<id>.jpg, one or two boxes an image."
    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, n in splits:
        imgs, anns = [], []
        for i in range(n):
            _image(root / split / f"{i}.jpg")
            imgs.append({"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 48})
            anns.append({"id": 10 * i, "image_id": i, "category_id": 1, "bbox": [2 + i, 3, 20, 12], "area": 240, "iscrowd": 0})
            if i % 2: anns.append({"id": 10 * i + 1, "image_id": i, "category_id": 2, "bbox": [30, 20, 16, 16], "area": 256, "iscrowd": 0})
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(
            {"images": imgs, "annotations": anns, "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}))
