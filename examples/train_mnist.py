#!/usr/bin/env python
"""Chainer 7.8.1's examples/mnist/train_mnist.py on Lightning: its trainer.extend(...) block as Chainer wrote it.

Only the imports, the model, the data and the construction of the trainer differ from Chainer's file: Lightning's
loop is the updater, ``lightning_chainer.ExtensionsManager`` is Chainer's ``training.Trainer`` without it, and
``-r/--resume`` becomes ``fit(ckpt_path=...)``. MNIST is read from ``--data-dir`` (default ``$DATA_DIR``,
``$MNIST_DATA_DIR`` or ``data/``), in torchvision's layout (``MNIST/raw/``), and downloaded there when absent.

    python examples/train_mnist.py -e 2 -u 100 --data-dir /path/to/data
"""

import os
import warnings

import lightning as L

from lightning_chainer import ExtensionsManager, quiet_console
from lightning_chainer.device_spec import torch_device
from lightning_chainer.training import extensions
from mnist_lightning.arguments import OneLineParser
from mnist_lightning.classifier import Classifier
from mnist_lightning.data import ImageDataModule
from mnist_lightning.idx import DataError
from mnist_lightning.models import MLP

# Chainer's layout and spellings (quotes, line breaks, str.format), so that the file compares line by line
# with Chainer's: neither ruff's formatter nor its f-string rule rewrites it.
# ruff: noqa: UP032
# fmt: off


def main():
    parser = OneLineParser(description='Chainer example: MNIST')  # a bad flag: one line
    parser.add_argument('--batchsize', '-b', type=int, default=100,
                        help='Number of images in each mini-batch')
    parser.add_argument('--epoch', '-e', type=int, default=20,
                        help='Number of sweeps over the dataset to train')
    parser.add_argument('--frequency', '-f', type=int, default=-1,
                        help='Frequency of taking a snapshot')
    parser.add_argument('--device', '-d', type=str, default='-1',
                        help='Device specifier: -1 or @numpy for the CPU, a non-negative integer, @cupy:N or '
                        'cuda:N for a GPU')
    parser.add_argument('--out', '-o', default='result',
                        help='Directory to output the result')
    parser.add_argument('--resume', '-r', type=str,
                        help='Resume the training from snapshot')
    parser.add_argument('--autoload', action='store_true',
                        help='Automatically load trainer snapshots in case'
                        ' of preemption or other temporary system failure')
    parser.add_argument('--unit', '-u', type=int, default=1000,
                        help='Number of units')
    parser.add_argument('--data-dir',
                        default=os.environ.get('DATA_DIR') or os.environ.get('MNIST_DATA_DIR') or 'data',
                        help='Folder holding MNIST/raw/ (default: $DATA_DIR, $MNIST_DATA_DIR or data/)')
    group = parser.add_argument_group('deprecated arguments')
    group.add_argument('--gpu', '-g', dest='device',
                       type=int, nargs='?', const=0,
                       help='GPU ID (negative value indicates CPU)')
    args = parser.parse_args()

    quiet_console()
    try:
        device = torch_device(args.device)
    except ValueError as error:
        parser.error(str(error))

    print('Device: {}'.format(device))
    print('# unit: {}'.format(args.unit))
    print('# Minibatch-size: {}'.format(args.batchsize))
    print('# epoch: {}'.format(args.epoch))
    print('')

    # Set up a neural network to train
    # Classifier reports softmax cross entropy loss and accuracy at every
    # iteration, which will be used by the PrintReport extension below.
    # It trains with Adam, Chainer's defaults.
    model = Classifier(MLP(args.unit, n_classes=10))

    # Load the MNIST dataset: all 60,000 training images train, the 10,000
    # test images evaluate, as chainer.datasets.get_mnist() gives them.
    data = ImageDataModule(args.data_dir, batch_size=args.batchsize, test_batch_size=args.batchsize,
                           pipeline='torchvision', validation='test')
    try:
        data.prepare_data()
        data.setup('fit')
    except DataError as error:
        parser.error(str(error))
    train_iter = data.train_dataloader()
    test_iter = data.val_dataloader()

    # Set up a trainer: Lightning's loop is the updater
    trainer = ExtensionsManager((args.epoch, 'epoch'), out=args.out)

    # Evaluate the model with the test dataset for each epoch
    trainer.extend(extensions.Evaluator(test_iter, model, device=device),
                   call_before_training=True)

    # Dump a computational graph from 'loss' variable at the first iteration
    # The "main" refers to the target link of the "main" optimizer.
    # (Chainer skips it on ChainerX devices, which torch does not have.)
    trainer.extend(extensions.DumpGraph('main/loss'))

    # Take a snapshot for each specified epoch
    frequency = args.epoch if args.frequency == -1 else max(1, args.frequency)
    # Take a snapshot each ``frequency`` epoch, delete old stale
    # snapshots and automatically load from snapshot files if any
    # files are already resident at result directory.
    trainer.extend(extensions.snapshot(n_retains=1, autoload=args.autoload),
                   trigger=(frequency, 'epoch'))

    # Write a log of evaluation statistics for each epoch
    trainer.extend(extensions.LogReport(), call_before_training=True)

    # Save two plot images to the result dir
    trainer.extend(
        extensions.PlotReport(['main/loss', 'validation/main/loss'],
                              'epoch', file_name='loss.png'),
        call_before_training=True)
    trainer.extend(
        extensions.PlotReport(
            ['main/accuracy', 'validation/main/accuracy'],
            'epoch', file_name='accuracy.png'),
        call_before_training=True)

    # Print selected entries of the log to stdout
    # Here "main" refers to the target link of the "main" optimizer again, and
    # "validation" refers to the default name of the Evaluator extension.
    # Entries other than 'epoch' are reported by the Classifier link, called by
    # either the updater or the evaluator.
    trainer.extend(extensions.PrintReport(
        ['epoch', 'main/loss', 'validation/main/loss',
         'main/accuracy', 'validation/main/accuracy', 'elapsed_time']),
        call_before_training=True)

    # Print a progress bar to stdout
    trainer.extend(extensions.ProgressBar())

    # The Lightning trainer runs the loop: the stop trigger ends it (max_epochs=-1 lifts Lightning's own limit),
    # and the Evaluator validates, not Lightning's validation loop.
    warnings.filterwarnings('ignore', message='You defined a `validation_step` but have no `val_dataloader`')
    lightning_trainer = L.Trainer(
        callbacks=[trainer], max_epochs=-1, logger=False, enable_checkpointing=False, enable_model_summary=False,
        accelerator='gpu' if device.type == 'cuda' else 'cpu',
        devices=[device.index or 0] if device.type == 'cuda' else 1)

    # Run the training (a --resume snapshot is the one resumed from; Chainer's
    # --autoload would load over it, here a --resume wins over --autoload)
    lightning_trainer.fit(model, train_iter, ckpt_path=args.resume)


if __name__ == '__main__':
    main()
