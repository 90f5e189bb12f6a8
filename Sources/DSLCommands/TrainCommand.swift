import DSLEngine
import DSLIR
import DSLTraining
import Foundation

/// `dsl train FILE --data DIR`: trains the network with the All-CNN paper's recipe.
enum TrainCommand {
    static let command = Command(name: "train", summary: "train a network on CIFAR-10/100 or MNIST, with checkpoints", help: """
    Usage: dsl train FILE --data DIR [--dataset NAME] [--labels fine|coarse]
                    [--train-limit N] [--test-limit N] [--epochs N] [--batch N] [--lr X]
                    [--momentum X] [--nesterov] [--weight-decay X] [--schedule S]
                    [--decoupled] [--weight-decay-on weights|all] [--bn-bias-lr M]
                    [--label-smoothing X] [--lookahead K]
                    [--flip M] [--no-flip] [--translate P] [--pad-mode M] [--whiten M]
                    [--zca-epsilon X] [--whitening-images N] [--seed S]
                    [--eval-every N|final] [--tta 0|1|2]
                    [--init CKPT] [--out DIR] [--overwrite] [--threads T] [--quiet]
           dsl train FILE --resume CKPT [--epochs N] [--out DIR] [--threads T] [--quiet]

    Trains the network on a dataset in its standard on-disk format: CIFAR-10 binary
    (data_batch_*.bin, any subset, + test_batch.bin), CIFAR-100 binary (train.bin, test.bin)
    or MNIST IDX (train-images-idx3-ubyte, ...). The format is detected from the files.
    Evaluates on the test set after every epoch (see --eval-every), appends metrics to
    OUT/metrics.jsonl and the per-iteration training loss to OUT/steps.jsonl, draws
    OUT/curves.svg (loss with the per-iteration trace, accuracy, learning rate, the best
    epoch marked), and writes OUT/checkpoint.safetensors atomically every epoch.

    Data:
      --data DIR            dataset directory (required for a new run)
      --dataset NAME        cifar10, cifar100 or mnist (default: detected)
      --labels fine|coarse  CIFAR-100 labels (default fine)
      --train-limit N       use only the first N training images
      --test-limit N        use only the first N test images
    Recipe:
      --epochs N            passes over the training set (default 10); may be fractional:
                            the run takes ceil(steps per epoch × N) steps, its last epoch
                            partial (9.9 with 48-step epochs: 476 steps, 10 epochs, the last
                            of 44 steps). An epoch is floor(images / batch) steps: the last
                            partial batch is dropped
      --batch N             images per step (default 64); the training set must hold at
                            least one batch (else an error says which --batch fits)
      --lr X                base learning rate (default 0.05 for a network with batch
                            norm, 0.02 without, such as the All-CNN networks)
      --momentum X          SGD momentum (default 0.9)
      --nesterov            Nesterov momentum
      --weight-decay X      L2 weight decay on weights, not biases or BN (default 0.001)
      --schedule S          cosine, constant, or step:F@E1,E2,... (the paper's:
                            step:0.1@200,250,300); append +warmup:N for N warm-up epochs
                            (default cosine with batch norm, cosine+warmup:1 without); or
                            linear:S,E@F, per step over the run's T steps: from S×lr up to lr
                            over the first W = floor(F×T) steps, then down to E×lr at step T
                            (step k < W: lr·(S + (1−S)·k/W);
                             k ≥ W: lr·(1 + (E−1)·(k−W)/(T−W)));
                            airbench94: linear:0.2,0.07@0.23
    Optimiser (the update is PyTorch's SGD on the batch-mean loss, per parameter:
    d = grad + c·w, v ← μ·v + d, w ← w − lr_t·m·(d + μ·v) with --nesterov, w ← w − lr_t·m·v
    without; lr_t the scheduled rate, m and c the parameter's multiplier and L2 coefficient):
      --decoupled           --lr and --weight-decay in airbench's decoupled form: lr_t starts
                            from lr·batch / (1024·(1 + 1/(1−μ))) and c = weight decay / lr,
                            so the decay per step, lr_t·c·w, does not change with --lr (both
                            flags are then required; airbench94: --lr 11.5 --weight-decay
                            0.0153 at batch 1024, momentum 0.85: lr_t from 1.5,
                            c = 0.00133043)
      --weight-decay-on S   weights (default: conv and linear weights only, c = 0 for biases
                            and batch norm) or all (every trained parameter, as airbench)
      --bn-bias-lr M        batch-norm shifts (biases) train at m = M times the rate, with
                            c divided by M so that their decay per step equals the others'
                            (airbench's bias_scaler: 64; default 1)
      --label-smoothing X   train on the cross-entropy against (1−X)·onehot + X/classes
                            (PyTorch's label_smoothing; default 0); the training loss shown
                            and logged is this smoothed loss, the test loss is the plain one
      --lookahead K         after every K steps, with t the steps done and T the run's:
                            a_t = 0.95^K·(t/T)^3, ema ← ema + (1−a_t)·(w − ema), w ← ema, over
                            every parameter and batch-norm running statistic; the average
                            starts as the state at the first step, and after the last step
                            w ← ema (airbench94: 5). K,B,P sets a_t = B^K·(t/T)^P
      --flip M              horizontal flips: random (default: each image of each step
                            with probability 1/2), alternate (airbench: each image gets
                            one seeded coin for the run, and in every odd epoch all
                            images are flipped on top of it), or off
      --no-flip             the same as --flip off
      --translate P         random translations up to P pixels (default 2; 0 turns off):
                            pad by P, crop a random window of the image's size (shifts
                            -P..P per axis, per image and step)
      --pad-mode M          what the translation's padding shows: zero (default; the
                            training mean after standardisation) or reflect (the image
                            mirrored at its border, as torch's pad mode 'reflect')
      --whiten M            standardize (default), zca (the paper's global contrast
                            normalisation + ZCA whitening), or none
      --zca-epsilon X       ZCA regularisation added to every eigenvalue (default 0.1, as
                            pylearn2); ZCA wants more training images than pixel values
      --whitening-images N  a layer initialised by patch whitening ('init=whiten')
                            computes its filters from the first N preprocessed training
                            images before the first step (default 5000, as airbench)
      --seed S              seed for weights, order, augmentation, dropout (default 1)
                            (weights: conv N(0, 2/(K*K*max(IC, OC))), fc N(0, 1/IN),
                            biases 0 except a ReLU classifier's, which starts at 1 so the
                            class units start alive; see README, Training)
    Evaluation:
      --eval-every N|final  evaluate the test set after every N-th epoch and after the
                            last (default 1); final: after the last epoch only
      --tta L               test-time augmentation of the final evaluation: 0 none
                            (default), 1 mirror (mean of the logits of the image and
                            its mirror), 2 airbench's (half level 1, half the mean of
                            level 1 on the image shifted by -1,-1 and +1,+1 px from a
                            reflect-padded copy); the logits averaged are the inputs of
                            the final softmax. Epoch lines report the plain accuracy; the
                            summary and metrics.jsonl (tta_loss, tta_acc) report both
    Run:
      --out DIR             where checkpoint, metrics, steps and plot go (default
                            runs/NETWORK, the network's name made safe for a directory;
                            with --resume, the checkpoint's directory)
      --resume CKPT         continue the run CKPT belongs to (see below)
      --init CKPT           start a new run from the weights of CKPT, a checkpoint of any
                            spec: every tensor whose name and shape match is loaded (see
                            Fine-tuning below)
      --overwrite           start a new run in an --out that already holds one (its
                            checkpoint, metrics, steps and plot are deleted first)
      --threads T           worker threads (default: all cores; results do not depend on it)
      --quiet               no progress display: the run's header, its epoch lines and
                            the final summary only

    Output: on a terminal, one progress line redrawn in place, fitted to the terminal's
    width (its size, else $COLUMNS, else 80 columns), replaced by the epoch's line when the
    epoch ends: each epoch leaves one line. When standard output is not a terminal (a file,
    a pipe), the epoch lines and, in epochs of more than 10 steps, a progress line every
    max(10, steps/10) steps: at most 10 lines an epoch, whatever its size. Losses are
    rounded to 5 significant digits (2.3026, 3.100e+38, nan).

    Run directory: OUT is locked (OUT/.lock, holding the pid) for the whole run; a second
    'dsl train' on the same OUT fails at once naming that pid. A new run refuses an OUT that
    holds a checkpoint or metrics (continue it with --resume, or pass --overwrite). Temporary
    files left in OUT by a killed write are removed when the next run starts.

    Resuming: the checkpoint stores the recipe (every flag above, the data directory as an
    absolute path, the detected dataset format), a fingerprint of the images, the fitted
    preprocessing, the optimizer state, the position, the epoch's running loss and the
    elapsed time. 'dsl train FILE --resume CKPT' with no other flag continues the run exactly:
    it ends with the same checkpoint as an uninterrupted run. Recipe flags given again must
    agree with the stored ones (an error names the flag and both values), except:
      --epochs N            a new total (more than the completed epochs): extends (or
                            shortens) the run; the schedule becomes the one of N epochs
      --data DIR            the dataset moved: accepted when its images match the stored
                            fingerprint
      --eval-every N        changes the evaluation only
      --tta L               changes the evaluation only
    metrics.jsonl keeps exactly the checkpoint's epochs: a line that does not parse, or a line
    of a later epoch, is dropped with a warning naming the file and line, after the original
    is copied to metrics.jsonl.bak; a clean log is only appended to.

    Fine-tuning: '--init CKPT' loads from CKPT (written by 'dsl train' for this spec or
    another, e.g. one with a new head) every parameter and batch-norm statistic whose name and
    shape match this network's, and says what it loaded and skipped; the rest keeps its
    initial values. It starts a new run: the recipe is this command's flags (CKPT's is not
    used), the preprocessing is fitted on this run's data, the momentum starts at zero, and
    --out must not hold a run (or pass --overwrite). CKPT is recorded in the run's checkpoints
    ("init"); the run is resumed like any other (--resume, without --init: the two cannot be
    combined).

    A checkpoint of another spec is refused for --resume, naming the layers and tensors that
    differ: a resumed run continues exactly, so even a changed dropout rate is refused (use
    --init to train the changed spec from its weights). 'dsl eval' only needs the same
    inference: a checkpoint whose spec differs in dropout only is evaluated.

    Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes the checkpoint and exits 130
    (SIGTERM: 143); a second Ctrl-C stops at once (the last checkpoint stays intact).

    Guards: a NaN or infinite loss stops training (exit 1), naming the step. So does a dead
    network: 50 consecutive steps whose mean loss is within 2 % of ln(classes), in each
    of which no gradient reaches the weights of the output layer (the last conv or fc
    before the softmax: its ReLU outputs zero for every image, or its input does) or the
    logits are the same for every image of a batch of 8 or more (standard deviation below
    0.02), stop the run (exit 1) with a message naming the dead layer (how many of its
    units died) and suggesting a lower --lr or a warm-up. An epoch that ends during such
    dead steps is not checkpointed: the checkpoint kept is that of the last epoch that
    ended with the network alive.

    """, run: run)

    /// Options that take a value and belong to the recipe stored in checkpoints.
    static let recipeValueFlags = ["--data", "--dataset", "--labels", "--train-limit", "--test-limit", "--epochs", "--batch", "--lr", "--momentum",
                                   "--weight-decay", "--schedule", "--translate", "--whiten", "--zca-epsilon", "--seed",
                                   "--weight-decay-on", "--bn-bias-lr", "--label-smoothing", "--lookahead",
                                   "--flip", "--pad-mode", "--whitening-images", "--eval-every", "--tta"]

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: Set(recipeValueFlags + ["--out", "--resume", "--init", "--threads"]),
                              flagOptions: ["--nesterov", "--no-flip", "--quiet", "--overwrite", "--decoupled"])
        guard a.positional.count == 1 else { throw UsageError(message: a.positional.isEmpty ? "missing spec file" : "expected one spec file") }
        let resumePath = a.value("--resume")
        if resumePath != nil && a.has("--overwrite") {
            throw UsageError(message: "--overwrite starts a new run and cannot be combined with --resume")
        }
        let initPath = a.value("--init")
        if resumePath != nil && initPath != nil {
            throw UsageError(message: "--init starts a new run from another checkpoint's weights and cannot be combined with --resume, which continues a run from its own checkpoint")
        }
        if resumePath == nil && a.value("--data") == nil {
            throw UsageError(message: "missing --data DIR (a CIFAR-10, CIFAR-100 or MNIST directory), or --resume CKPT to continue a run")
        }
        var flags = try optionsFromFlags(a)
        engineThreadCount = try a.integer("--threads", default: ProcessInfoCores.count, in: 1...256)

        guard let (checked, g, _) = try loadChecked(a.positional[0], printWarnings: true) else { return ExitCode.failure }
        // Without --lr and --schedule, rate and schedule suit the network: 0.05 and cosine with
        // batch norm, 0.02 and a one-epoch warm-up before the cosine without (a resumed run keeps
        // its own, stored in the checkpoint).
        if a.value("--lr") == nil { flags.learningRate = TrainingOptions.defaultLearningRate(for: g) }
        if a.value("--schedule") == nil { flags.schedule = TrainingOptions.defaultSchedule(for: g) }
        if !endsInSoftmax(g) {
            reportEngineError("training needs a network that ends in 'softmax' (the loss is softmax cross-entropy); "
                              + "this one ends in '\(g.nodes[g.output].name)'", node: g.output, checked: checked, graph: g)
            return ExitCode.failure
        }
        for (flag, path) in [("--resume", resumePath), ("--init", initPath)] {
            if let path, !isExistingFile(path) {
                throw CommandFailure(message: "\(flag) \(path): \(FileManager.default.fileExists(atPath: path) ? "is a directory, expected a checkpoint file" : "file not found")")
            }
        }
        let initCheckpoint = try initPath.map { try TrainingCheckpoint.read(from: $0) }
        let checkpointDirectory = resumePath.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
        let outDir = a.value("--out") ?? checkpointDirectory ?? "runs/" + RunDirectory.safeName(g.name)
        // The lock is held until this function returns: a second run on the same directory stops here.
        let run = try RunDirectory(path: outDir, label: "--out")
        for stale in run.removeStaleTemporaryFiles() { err("note: removed \(stale), left by an interrupted write\n") }
        try run.checkRunFiles(label: "--out")
        let checkpointPath = run.file("checkpoint.safetensors")
        let metricsPath = run.file("metrics.jsonl")
        let stepsPath = run.file("steps.jsonl")
        let plotPath = run.file("curves.svg")

        var o: TrainingOptions
        var resumed: TrainingCheckpoint?
        if let resumePath {
            let checkpoint = try TrainingCheckpoint.read(from: resumePath)
            _ = try Trainer.checkCheckpoint(checkpoint, graph: g, file: resumePath, use: .resume)
            guard let stored = checkpoint.recipe, checkpoint.data != nil else {
                throw CommandFailure(message: "\(resumePath): written by an older dsl (format \(checkpoint.metadata["format"] ?? "dsl-checkpoint-1")) that did not store the training recipe; it can be evaluated with 'dsl eval' but not resumed")
            }
            let given = Set(recipeValueFlags.filter { a.value($0) != nil } + ["--nesterov", "--decoupled"].filter { a.has($0) } + (a.has("--no-flip") ? ["--flip"] : []))
            do {
                o = try TrainingOptions.resumed(stored: stored, flags: flags, given: given, completedEpochs: checkpoint.epoch, file: resumePath) { err("note: \($0)\n") }
            } catch let e as RecipeConflict {
                throw UsageError(message: e.message)
            }
            if !sameDirectory(outDir, checkpointDirectory!) {
                let held = RunDirectory.runFiles.prefix(2).filter { FileManager.default.fileExists(atPath: run.file($0)) }
                if !held.isEmpty {
                    throw CommandFailure(message: "--out \(outDir): already holds another run (\(held.joined(separator: ", "))); resume into the checkpoint's own directory (omit --out) or choose an empty --out")
                }
            }
            resumed = checkpoint
        } else {
            o = flags
            let held = RunDirectory.runFiles.prefix(2).filter { FileManager.default.fileExists(atPath: run.file($0)) }
            if !held.isEmpty {
                guard a.has("--overwrite") else {
                    throw CommandFailure(message: "--out \(outDir): already holds a run (\(held.joined(separator: ", "))); continue it with 'dsl train \(a.positional[0]) --resume \(checkpointPath)', replace it with --overwrite, or choose another --out")
                }
                for name in RunDirectory.runFiles where FileManager.default.fileExists(atPath: run.file(name)) {
                    guard unlink(run.file(name)) == 0 else {
                        throw CommandFailure(message: "--overwrite: cannot remove \(run.file(name)): \(String(cString: strerror(errno)))")
                    }
                }
                out("overwriting the run in \(outDir)\n")
            }
            // A trace left without its run (no checkpoint, no metrics) is not continued.
            if FileManager.default.fileExists(atPath: stepsPath) && unlink(stepsPath) != 0 {
                throw CommandFailure(message: "--out \(outDir): cannot remove \(stepsPath): \(String(cString: strerror(errno)))")
            }
        }
        guard let dataDir = o.dataDirectory else { throw CommandFailure(message: "no data directory: pass --data DIR") }
        if o.dataset == nil { o.dataset = try detectDatasetFormat(directory: dataDir) }
        let data = try loadDataset(directory: dataDir, format: o.dataset, labels: o.labels)
        let trainer: Trainer
        do {
            trainer = try Trainer(graph: g, train: data.train, test: data.test, options: o, preprocessor: resumed?.preprocessor)
        } catch let e as LoweringError {
            reportLoweringError(e, checked: checked, graph: g)
            return ExitCode.failure
        } catch let e as EngineMemoryError {
            throw memoryFailure(e, path: checked.source.path)
        }

        var history: [EpochMetrics] = []
        var stepLog: [StepRecord] = []
        if let initCheckpoint, let initPath {
            let report = try trainer.initialize(from: initCheckpoint, file: absolutePath(initPath))
            let from = [initCheckpoint.metadata["network"].map { "network \($0)" }, "\(initCheckpoint.epoch) epoch\(initCheckpoint.epoch == 1 ? "" : "s")"]
                .compactMap { $0 }.joined(separator: ", ")
            out("init: loaded \(report.loaded.count) of \(report.loaded.count + report.skipped.count + report.missing.count) tensors "
                + "(\(grouped(report.loadedValues)) of \(grouped(report.totalValues)) values) from \(initPath) (\(from))\n")
            if !(report.skipped.isEmpty && report.missing.isEmpty && report.unused.isEmpty) { out("init: \(report.describe())\n") }
            if let method = initCheckpoint.preprocessor?.method, method != trainer.preprocessor.method {
                out("note: \(initPath) was trained with --whiten \(whitenFlagValue(method)); this run fits --whiten \(whitenFlagValue(trainer.preprocessor.method)) on its own data\n")
            }
        }
        if let checkpoint = resumed, let resumePath {
            if let stored = checkpoint.data, stored != trainer.dataFingerprint {
                let fp = trainer.dataFingerprint
                throw CommandFailure(message: "--data \(dataDir): its images differ from the ones the run in \(resumePath) trained on "
                    + "(\(stored.trainImages) training images with hash \(stored.trainHash) and \(stored.testImages) test images with hash \(stored.testHash); "
                    + "found \(fp.trainImages) with hash \(fp.trainHash) and \(fp.testImages) with hash \(fp.testHash)); the dataset changed: restore it, or start a new run")
            }
            try trainer.restore(from: checkpoint, file: resumePath)
            history = try resumeMetricsLog(path: metricsPath, fallback: sameDirectory(outDir, checkpointDirectory!) ? nil : checkpointDirectory.map { $0 + "/metrics.jsonl" },
                                           epochs: checkpoint.epoch) { err("warning: \($0)\n") }
            do {
                stepLog = try resumeStepLog(path: stepsPath, fallback: sameDirectory(outDir, checkpointDirectory!) ? nil : checkpointDirectory.map { $0 + "/steps.jsonl" },
                                            upTo: checkpoint.epoch * trainer.stepsPerEpoch + checkpoint.step)
            } catch {
                err("warning: \(error); the per-iteration loss starts again here\n")
            }
            out("resuming from \(resumePath) at epoch \(checkpoint.epoch + 1) of \(o.epochs), step \(checkpoint.step) of \(trainer.stepsPerEpoch) (data \(dataDir), output \(outDir))\n")
        }

        let progress = ProgressReporter(epochs: o.epochs, batchesPerEpoch: trainer.stepsPerEpoch, quiet: a.has("--quiet"))
        var trace = StepTrace(stepsPerEpoch: trainer.stepsPerEpoch, epochs: o.epochs)
        var lastRate = 0.0
        var warned = Set<String>()
        func warnOnce(_ key: String, _ message: String) {
            if warned.insert(key).inserted { progress.clear(); err("warning: \(message)\n") }
        }
        func record(_ step: StepRecord?) {
            guard let step else { return }
            stepLog.append(step)
            do { try appendStepRecords([step], to: stepsPath) } catch { warnOnce("steps", "\(error) (training continues)") }
        }
        func plot() {
            do { try writeTrainingPlot(history, steps: stepLog, to: plotPath, title: g.name) } catch { warnOnce("plot", "\(error) (training continues)") }
        }
        receivedStopSignal = 0
        Trainer.stopRequested = false
        installStopHandlers()
        defer { restoreDefaultHandlers() }
        let outcome: TrainingOutcome
        do {
            outcome = try trainer.run(report: { event in
                switch event {
                case .started(let text):
                    out(text + "\n")
                case let .step(epoch, step, steps, loss, acc, ips, _, batchLoss, rate):
                    progress.batch(epoch: epoch, batch: step, loss: loss, accuracy: acc, imagesPerSecond: ips)
                    lastRate = Double(rate)
                    record(trace.add(epoch: epoch, step: step, loss: batchLoss, learningRate: Double(rate))
                           ?? (step == steps ? trace.flush(epoch: epoch, step: step, learningRate: Double(rate)) : nil))   // a partial last epoch
                case let .evaluating(epoch, images):
                    progress.evaluating(epoch: epoch, images: images)
                case let .epochEnded(epoch, trainLoss, trainAcc, test, lr, ips, elapsed):
                    var metrics = EpochMetrics(epoch: epoch, step: min(epoch * trainer.stepsPerEpoch, trainer.totalSteps), learningRate: Double(lr), trainLoss: trainLoss, trainAccuracy: trainAcc,
                                               testLoss: test?.loss, testAccuracy: test?.accuracy, imagesPerSecond: ips, elapsedSeconds: elapsed)
                    metrics.ttaLoss = test?.tta?.loss; metrics.ttaAccuracy = test?.tta?.accuracy
                    progress.endEpoch(metrics)
                    history.append(metrics)
                    do { try appendMetrics(metrics, to: metricsPath) } catch { warnOnce("metrics", "\(error) (training continues; the checkpoint is still written)") }
                    plot()
                case .checkpoint:
                    break
                }
            }, checkpoint: { t in
                try t.checkpoint().write(to: checkpointPath)
            })
        } catch let e as DeadNetworkError {
            // The steps run so far stay in steps.jsonl and curves.svg (a resume cuts them back).
            record(trace.flush(epoch: e.epoch, step: e.step - 1, learningRate: lastRate))
            plot()
            progress.clear()
            let kept: String
            if let last = e.lastCheckpoint {
                kept = "\(checkpointPath) holds the run at epoch \(last.epoch)\(last.step > 0 ? ", step \(last.step)" : "")"
                    + (last.epoch + 1 < e.epoch ? ", the last epoch that ended with the network alive (the later ones were not checkpointed)" : "")
            } else {
                kept = "no checkpoint was written (no epoch ended with the network alive)"
            }
            throw CommandFailure(message: "\(e); \(kept)")
        }
        withExtendedLifetime(run) {}
        let signalled = receivedStopSignal
        switch outcome {
        case .finished:
            var summary = "done: \(formatEpochCount(o.trainingEpochs)) epoch\(o.trainingEpochs == 1 ? "" : "s") in \(ProgressFormat.duration(trainer.elapsedSeconds))"
            if let last = history.last?.testAccuracy {
                summary += ", test accuracy \(ProgressFormat.percent(last, decimals: 2))"
                if let best = bestEpoch(history), best.tested { summary += " (best \(ProgressFormat.percent(best.accuracy, decimals: 2)) at epoch \(best.epoch))" }
            }
            if let tta = history.last?.ttaAccuracy { summary += ", with --tta \(o.tta) \(ProgressFormat.percent(tta, decimals: 2))" }
            out(summary + "\n")
            if let peak = peakResidentMegabytes() { out("peak memory \(peak) MiB (resident, VmHWM)\n") }
            out("saved in \(outDir): " + [checkpointPath, metricsPath, plotPath].map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", ") + "\n")
        case let .interrupted(epoch, step):
            record(trace.flush(epoch: epoch + 1, step: step, learningRate: lastRate))
            plot()
            progress.clear()
            out("interrupted: checkpoint written to \(checkpointPath) at epoch \(epoch + 1), step \(step); continue with: dsl train \(a.positional[0]) --resume \(checkpointPath)\n")
        }
        return signalled != 0 ? 128 + signalled : ExitCode.ok
    }

    /// The recipe given by the command line (defaults for what is not given), ranges checked.
    static func optionsFromFlags(_ a: Arguments) throws -> TrainingOptions {
        var o = TrainingOptions()
        if let text = a.value("--epochs") {
            guard let n = Double(text), n.isFinite, n > 0, n <= 100_000 else {
                throw UsageError(message: "--epochs must be a number above 0 and at most 100000 (e.g. 10, or 9.9 for a partial last epoch), got '\(text)'")
            }
            o.trainingEpochs = n
        }
        o.batch = try a.integer("--batch", default: 64, in: 1...4096)
        o.learningRate = Float(try a.number("--lr", default: 0.05, in: a.has("--decoupled") ? 0...10_000 : 0...10))
        o.momentum = Float(try a.number("--momentum", default: 0.9, in: 0...0.999))
        o.nesterov = a.has("--nesterov")
        if o.nesterov && o.momentum == 0 { throw UsageError(message: "--nesterov needs --momentum above 0") }
        o.weightDecay = Float(try a.number("--weight-decay", default: 1e-3, in: 0...1))
        o.schedule = a.value("--schedule") ?? "cosine"
        if let f = a.value("--flip") {
            guard let mode = FlipMode(rawValue: f) else { throw UsageError(message: "--flip must be random, alternate or off, got '\(f)'") }
            if a.has("--no-flip") && mode != .off { throw UsageError(message: "--no-flip contradicts --flip \(f)") }
            o.flipMode = mode
        }
        if a.has("--no-flip") { o.flipMode = .off }
        o.translate = try a.integer("--translate", default: 2, in: 0...16)
        if let m = a.value("--pad-mode") {
            guard let mode = PadMode(rawValue: m) else { throw UsageError(message: "--pad-mode must be zero or reflect, got '\(m)'") }
            o.padMode = mode
        }
        o.patchWhiteningImages = try a.integer("--whitening-images", default: 5000, in: 1...Int.max)
        if a.value("--eval-every") == "final" { o.evalEvery = 0 } else {
            o.evalEvery = try a.integer("--eval-every", default: 1, in: 1...100_000)
        }
        o.tta = try a.integer("--tta", default: 0, in: 0...2)
        o.seed = UInt64(try a.integer("--seed", default: 1, in: 0...Int.max))
        if a.value("--train-limit") != nil { o.trainLimit = try a.integer("--train-limit", default: 0, in: 1...Int.max) }
        if a.value("--test-limit") != nil { o.testLimit = try a.integer("--test-limit", default: 0, in: 1...Int.max) }
        if let w = a.value("--whiten") {
            guard let method = parseWhitenFlag(w) else { throw UsageError(message: "--whiten must be standardize, zca or none, got '\(w)'") }
            o.whiten = method
        }
        if a.value("--zca-epsilon") != nil {
            o.zcaEpsilon = Float(try a.number("--zca-epsilon", default: Double(Preprocessor.defaultZCAEpsilon), in: 1e-6...1e6))
        }
        if let d = a.value("--data") { o.dataDirectory = absolutePath(d) }
        if let format = try a.datasetFormat() { o.dataset = format }
        if let labels = try a.cifar100Labels() { o.labels = labels }
        try optimizationOptions(a, into: &o)
        if a.value("--resume") == nil {
            if a.value("--zca-epsilon") != nil && o.whiten != .gcnZCA { throw UsageError(message: "--zca-epsilon applies only with --whiten zca") }
            do { _ = try LearningRateSchedule.parse(o.schedule, baseRate: Double(o.stepLearningRate), epochs: o.trainingEpochs) } catch { throw UsageError(message: "--schedule: \(error)") }
        }
        return o
    }
}

extension TrainCommand {
    /// --decoupled, --weight-decay-on, --bn-bias-lr, --label-smoothing and --lookahead.
    static func optimizationOptions(_ a: Arguments, into o: inout TrainingOptions) throws {
        o.decoupled = a.has("--decoupled")
        if o.decoupled && a.value("--resume") == nil && (a.value("--lr") == nil || a.value("--weight-decay") == nil) {
            throw UsageError(message: "--decoupled needs --lr and --weight-decay (in airbench's form, e.g. --lr 11.5 --weight-decay 0.0153)")
        }
        if let scope = a.value("--weight-decay-on") {
            guard let value = WeightDecayScope(rawValue: scope) else { throw UsageError(message: "--weight-decay-on must be weights or all, got '\(scope)'") }
            o.weightDecayScope = value
        }
        o.batchNormBiasLearningRate = Float(try a.number("--bn-bias-lr", default: 1, in: 1e-6...1e6))
        o.labelSmoothing = Float(try a.number("--label-smoothing", default: 0, in: 0...0.999))
        if let text = a.value("--lookahead") {
            do { o.lookahead = try LookaheadSchedule.parse(text) } catch let e as TrainingError { throw UsageError(message: "--" + e.message) }
        }
    }
}

/// The signal that asked a training run to stop (0: none).
nonisolated(unsafe) var receivedStopSignal: Int32 = 0

/// SIGINT and SIGTERM finish the current step, write the checkpoint and exit 128 + signal;
/// the handler resets itself, so a second Ctrl-C stops the process at once.
private func installStopHandlers() {
    for sig in [SIGINT, SIGTERM] {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { s in
            receivedStopSignal = s
            Trainer.stopRequested = true
        }
        action.sa_flags = Int32(bitPattern: UInt32(SA_RESETHAND))
        sigemptyset(&action.sa_mask)
        sigaction(sig, &action, nil)
    }
}

private func restoreDefaultHandlers() {
    signal(SIGINT, SIG_DFL)
    signal(SIGTERM, SIG_DFL)
}

/// Whether `path` is an existing regular file (or a link to one).
private func isExistingFile(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
}

/// `path` made absolute against the working directory, with `.` and `..` resolved.
private func absolutePath(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.path
}

/// Whether two paths name the same directory (symbolic links resolved).
private func sameDirectory(_ a: String, _ b: String) -> Bool {
    URL(fileURLWithPath: a).standardizedFileURL.resolvingSymlinksInPath().path == URL(fileURLWithPath: b).standardizedFileURL.resolvingSymlinksInPath().path
}

/// The process's peak resident set size in MiB (VmHWM of /proc/self/status), nil where unknown.
func peakResidentMegabytes() -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kilobytes = Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") else { return nil }
    return (kilobytes + 512) / 1024
}
