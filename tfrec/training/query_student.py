"""Distils the query student of a pretrained text encoder before the towers train.

What the student must reproduce is the encoder's frozen part, which never trains: so the
distillation needs no tower, no label and no event, and runs once, before the towers train on
its outputs. The teacher's output is computed on the fly for each batch of query-like text:

- a random subset of a catalog title's words, in title order (how training queries are made,
  `tfrec.data.pipeline.RetrievalPreprocessor`), and whole titles;
- one to six random whole words of the pretrained vocabulary, so the student also follows the
  teacher on words the catalog never uses (a paraphrase like "puppy meal" for "dog food");
- a title subset with one such word added.

The loss is the squared error relative to the target's energy plus one minus the cosine of the
pooled vectors: the first keeps token states (mode finetune) and scales close, the second is
what retrieval reads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfrec import features
from tfrec.data import vocab
from tfrec.layers import pretrained_text_encoder

# Words a random query takes from the vocabulary: at most this many.
_MAX_VOCABULARY_WORDS = 6
# Held-out query-like texts the closing cosine (student vs teacher) is measured on.
_CHECK_TEXTS = 512


def vocabulary_words(tokens: Sequence[str]) -> np.ndarray:
    """The vocabulary's whole alphabetic words of 3+ letters (no `##` pieces, no `[SPECIAL]`)."""
    words = [t for t in tokens if len(t) >= 3 and t.isascii() and t.isalpha()]
    if not words:
        raise ValueError("the vocabulary holds no whole word of 3+ letters to sample queries from")
    return np.asarray(words, dtype=object)


def query_like_texts(
    titles: Sequence[str], words: np.ndarray, count: int, rng: np.random.Generator
) -> list[str]:
    """`count` query-like strings mixing title words and vocabulary words (module docstring).

    Args:
        titles: sequence of str. Catalog titles of the training window (empty ones skipped).
        words: str array. Vocabulary words (`vocabulary_words`).
        count: int >= 0.
        rng: numpy Generator.
    """
    split = [t.split() for t in titles if str(t).strip()]
    out = []
    for kind in rng.integers(0, 4, count):
        if kind == 2 or not split:
            out.append(" ".join(rng.choice(words, rng.integers(1, _MAX_VOCABULARY_WORDS + 1))))
            continue
        title = split[rng.integers(len(split))]
        if kind == 0:
            out.append(" ".join(title))
            continue
        keep = rng.random(len(title)) < 0.5
        keep[rng.integers(len(title))] = True
        picked = [w for w, k in zip(title, keep, strict=True) if k]
        if kind == 3:
            picked.insert(int(rng.integers(len(picked) + 1)), str(rng.choice(words)))
        out.append(" ".join(picked))
    return out


def _loss(
    encoder: pretrained_text_encoder.PretrainedTextEncoder, token_ids: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """(loss, mean cosine of the pooled vectors) of the student against the frozen part."""
    teacher, mask = encoder.frozen_outputs(token_ids)
    student, _ = encoder.frozen_outputs(token_ids, student=True)
    teacher = tf.stop_gradient(tf.cast(teacher, tf.float32))
    student = tf.cast(student, tf.float32)
    if teacher.shape.rank == 3:  # finetune: token states, padding masked out
        weight = tf.cast(mask, tf.float32)[..., tf.newaxis]
        error = tf.reduce_sum(weight * tf.square(student - teacher))
        energy = tf.reduce_sum(weight * tf.square(teacher))
        teacher = encoder.token_pooling([teacher, mask])
        student = encoder.token_pooling([student, mask])
    else:
        error = tf.reduce_sum(tf.square(student - teacher))
        energy = tf.reduce_sum(tf.square(teacher))
    cosine = tf.reduce_sum(
        tf.math.l2_normalize(student, -1) * tf.math.l2_normalize(teacher, -1), axis=-1
    )
    return error / tf.maximum(energy, 1e-12) + 1.0 - tf.reduce_mean(cosine), cosine


def distil(
    encoder: pretrained_text_encoder.PretrainedTextEncoder,
    spec: features.FeatureSpec,
    titles: Sequence[str],
    steps: int,
    batch_size: int = 64,
    learning_rate: float = 2e-4,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Trains `encoder.student` to give the frozen part's outputs on query-like text.

    Args:
        encoder: PretrainedTextEncoder with a student (`query_student_layers > 0`), built.
        spec: FeatureSpec. Its tokenizer and `query_text_length` make the student's inputs
            what serving gives it.
        titles: sequence of str. Catalog titles of the training window.
        steps: int >= 1. Batches.
        batch_size: int >= 1.
        learning_rate: float > 0. Adam's.
        seed: int. Seeds the texts.
        progress: bool. Show a tqdm bar.

    Returns:
        dict: steps, seconds, the first and last batches' loss, and the mean cosine between
        student and teacher on held-out query-like texts before and after.
    """
    import tqdm

    if encoder.student is None:
        raise ValueError("`encoder` has no query student (query_student_layers=0)")
    rng = np.random.default_rng(seed)
    words = vocabulary_words(spec.wordpiece)
    length = spec.query_text_length
    held_out = np.asarray(query_like_texts(titles, words, _CHECK_TEXTS, rng), dtype=object)
    check = tf.constant(vocab.tokenize(held_out, spec, length))
    before = float(tf.reduce_mean(_loss(encoder, check)[1]))
    texts = query_like_texts(titles, words, steps * batch_size, rng)
    token_ids = vocab.tokenize(np.asarray(texts, dtype=object), spec, length)
    variables = encoder.student.variables
    optimizer = tf.keras.optimizers.Adam(learning_rate)

    @tf.function(reduce_retracing=True)
    def step(batch):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            # The student is frozen for the towers (trainable=False): watched by hand here.
            tape.watch(variables)
            loss, _ = _loss(encoder, batch)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    start = time.perf_counter()
    losses = []
    bar = tqdm.trange(steps, desc="query student", unit="step", disable=not progress)
    for i in bar:
        loss = float(step(tf.constant(token_ids[i * batch_size : (i + 1) * batch_size])))
        losses.append(loss)
        bar.set_postfix(loss=f"{loss:.4f}")
    bar.close()
    after = float(tf.reduce_mean(_loss(encoder, check)[1]))
    summary = {
        "layers": len(encoder.student.transformer_layers),
        "teacher_layers": list(encoder.student_picks),
        "steps": steps,
        "seconds": time.perf_counter() - start,
        "first_loss": losses[0],
        "last_loss": float(np.mean(losses[-max(1, steps // 10) :])),
        "cosine_to_teacher_before": before,
        "cosine_to_teacher_after": after,
    }
    print(
        f"query student ({summary['layers']} layers): cosine to the teacher on held-out "
        f"query-like text {before:.4f} -> {after:.4f} in {summary['seconds']:.0f} s"
    )
    return summary
