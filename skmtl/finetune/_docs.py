"""The docstring of :class:`~skmtl.FineTunedClassifier` (long enough to live apart)."""

DOC = """A pretrained CNN fine-tuned end to end on images, as a scikit-learn classifier.

    The model is the backbone, global average pooling, dropout and a new softmax layer
    for ``classes_``. Training has two phases:

    1. **Head** (backbone frozen): by default skmtl's logistic head (its L2 strength
       chosen by inner cross-validation, as in the frozen-feature pipeline) is fitted on
       the pooled features and loaded into the softmax layer; ``head_init="train"``
       trains the softmax layer by gradient descent for ``head_epochs`` epochs instead.
    2. **Fine-tuning**: the top ``trainable_layers`` weight-holding layers of the
       backbone are unfrozen and trained with the head for ``epochs`` epochs, at
       ``fine_tune_learning_rate`` for the head and ``layer_lr_ratio`` times less for
       each of ``layer_groups`` groups of unfrozen layers going down (discriminative
       learning rates), under a warm-up + cosine (or one-cycle) schedule.

    Frozen layers get no updates, and frozen batch-norm layers run in inference mode (their
    moving statistics never change). Images are read by a ``tf.data`` pipeline with
    skmtl's own decoding (EXIF, CMYK, 16-bit, alpha...) in parallel threads, so without
    augmentation the network sees exactly the pixels :class:`PretrainedFeaturizer` feeds
    it; memory is bounded by a few batches. Early stopping watches the log loss on a
    stratified ``validation_fraction`` of the training images (or ``validation_data``),
    and the weights of the best epoch, the head phase included, are kept.

    Parameters
    ----------
    backbone : str or keras.Model, default="efficientnet_lite0"
        A name from :func:`skmtl.list_backbones`, or your own Keras model with a 4-D
        output (then give ``preprocess``); it is copied, never changed.
    weights : "imagenet", None or path, default="imagenet"
        ImageNet weights, random initialisation (seeded by ``random_state``), or a local
        weights file. EfficientNet-Lite ImageNet weights work offline.
    input_size : int or (int, int), default=None
        Image size; the backbone's native one by default.
    resize : {"squash", "center_crop", "pad"}, default="squash"
        How images reach ``input_size`` (see :class:`PretrainedFeaturizer`).
    preprocess : callable or str, default=None
        Preprocessing of float32 RGB batches on the 0-255 scale; None uses the backbone's
        own, a str that registry backbone's. Required for a custom model.
    dropout : float, default=0.2
        Dropout rate before the softmax layer.
    head_init : {"logistic", "train"}, default="logistic"
        How phase one fits the head (see above).
    head_epochs : int, default=1
        Epochs of phase one with ``head_init="train"``.
    learning_rate : float, default=1e-3
        Adam learning rate of phase one with ``head_init="train"``.
    trainable_layers : int or "all", default="all"
        Weight-holding backbone layers (convolutions, batch norms...) unfrozen in phase
        two, counted from the top; 0 trains the head alone.
    epochs : int, default=4
        Epochs of phase two (0 skips it).
    fine_tune_learning_rate : float, default=1e-4
        Adam learning rate of the head in phase two.
    layer_lr_ratio : float, default=0.5
        Each lower group of unfrozen layers learns at this fraction of the rate of the
        group above it (1 gives every layer the same rate).
    layer_groups : int, default=3
        Groups the unfrozen layers are split into, in depth order.
    schedule : {"cosine", "one_cycle", "constant"}, default="cosine"
        Learning-rate schedule of each phase trained by gradient descent: linear warm-up
        then cosine decay to zero, fastai's one cycle, or constant.
    warmup : float, default=0.1
        Fraction of a phase's steps spent warming up.
    train_batchnorm : bool, default=False
        Let the unfrozen batch-norm layers train (batch statistics, moving averages,
        scale and shift). By default every batch-norm layer stays frozen in inference
        mode, the usual advice for small data sets.
    augment : {"flip", "crop", "flip_crop"} or None, default="flip"
        Training augmentation: random horizontal flips, random resized crops (35-100%
        of the resized image, aspect 3/4 to 4/3, resized back), both, or none.
    tta : {"flip"} or None, default=None
        Average the predictions on the images and their mirrors.
        :class:`FlipTTAClassifier` sets it when it wraps this classifier.
    batch_size : int, default=32
        Images per step.
    validation_fraction : float or None, default=0.1
        Stratified share of the training images held out for early stopping and for
        choosing the best epoch; None trains every epoch and keeps the last weights.
        Ignored when ``fit`` gets ``validation_data``.
    patience : int or None, default=2
        Epochs without a lower validation loss before a phase stops; None never stops.
    mixed_precision : bool or "auto", default="auto"
        Compute in bfloat16 (variables and softmax in float32); "auto" does so on a GPU.
    device : str, default=None
        ``"cpu"``, ``"gpu"`` or a TensorFlow device; None uses the first GPU if any.
    n_jobs : int, default=None
        Threads that decode images (None: up to 4, bounded by the CPU count).
    random_state : int or None, default=0
        Seeds the validation split, shuffling, augmentation, dropout and random weights.
    verbose : int, default=1
        Print one line per epoch (loss, accuracy, validation loss and accuracy); 0 is
        silent.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    model_ : keras.Model
        The trained network (softmax output, columns in the order of ``classes_``).
    history_ : dict of lists
        Per epoch: ``phase`` ("head" or "fine-tune"), ``loss``, ``accuracy`` (on the
        training images, as trained: with dropout and augmentation), ``learning_rate``
        (the head's at the epoch's last step; 0 for the logistic head phase), ``seconds``
        and, with validation data, ``val_loss`` and ``val_accuracy``.
    best_epoch_ : int or None
        1-based epoch (in ``history_``) whose weights were kept; None without validation.
    n_epochs_ : int
        Epochs trained, both phases.
    layer_learning_rates_ : list of (int, float)
        Phase two's layer groups, from the head down: (layers, base learning rate).
    input_size_ : tuple of int
        (height, width) the images are resized to.
    backbone_name_ : str
        The backbone's name.

    See Also
    --------
    skmtl.make_transfer_pipeline : frozen features and a head, far cheaper on a CPU.

    Notes
    -----
    Pickling (joblib) stores the network in the native ``.keras`` format inside the
    pickle; a custom backbone with custom layers needs them registered as Keras
    serializable to be loaded again. A network trained on a CPU is slow: an epoch of
    EfficientNet-Lite0 at 224 px with every layer trainable ran at 4 to 8 images/s on two
    shared cores (docs/measurements.md, "Fine-tuning"), where frozen features and a
    head took a fifth of the time and scored as well.

    Examples
    --------
    >>> import skmtl
    >>> train = skmtl.load_image_folder("data/train")  # doctest: +SKIP
    >>> model = skmtl.FineTunedClassifier("efficientnet_lite0", epochs=3)
    >>> model.fit(train.path, train.label)  # doctest: +SKIP
    >>> model.predict_proba(test_paths)  # doctest: +SKIP
    >>> model.history_["val_loss"]  # doctest: +SKIP
    """
