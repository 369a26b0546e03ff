using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.optim;

namespace ResNetSharp.Training;

/// <summary>SGD settings (TorchSharp's <see cref="TorchSharp.Modules.SGD"/> does the update).</summary>
public sealed record SgdOptions
{
    /// <summary>Learning rate at the schedule's peak (step and cosine: the start; one-cycle: the maximum). Default 0.1 (the paper's).</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>Momentum. Default 0.9 (the paper's).</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>L2 weight decay. Default 1e-4 (the paper's CIFAR value; 5e-4 is common for short Fashion-MNIST recipes).</summary>
    public double WeightDecay { get; init; } = 1e-4;

    /// <summary>Nesterov momentum. Default false (the paper's).</summary>
    public bool Nesterov { get; init; }

    /// <summary>
    /// Exempt BatchNorm weights and every bias (all parameters of one dimension) from weight decay, as timm's
    /// <c>param_groups_weight_decay</c> does. Default false (the paper decays everything).
    /// </summary>
    public bool NoDecayOnNormAndBias { get; init; }

    /// <summary>
    /// Per-part learning-rate multipliers for a <see cref="ResNet"/> (discriminative fine-tuning), keyed by
    /// <see cref="ResNet.ParameterGroups"/> names: <c>stem</c>, <c>layer1</c> … <c>layerN</c>, <c>fc</c>. Each part's
    /// rate is <see cref="LearningRate"/> × its multiplier (1 for parts not named), and every schedule scales all groups
    /// alike (one-cycle peaks at each group's own rate). Null (default): one rate for the whole model.
    /// </summary>
    public IReadOnlyDictionary<string, double>? LearningRateScales { get; init; }

    /// <summary>Checks the ranges.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate()
    {
        if (!(LearningRate > 0) || !(Momentum >= 0 && Momentum < 1) || !(WeightDecay >= 0) || (Nesterov && Momentum == 0))
        {
            throw new ArgumentException(
                $"SGD: learning rate must be > 0, momentum in [0, 1) (and > 0 for Nesterov), weight decay ≥ 0; got {LearningRate}, {Momentum}, {WeightDecay}, nesterov {Nesterov}.");
        }

        if (LearningRateScales is { } scales && scales.FirstOrDefault(kv => !(kv.Value > 0) || double.IsInfinity(kv.Value)) is { Key: not null } bad)
        {
            throw new ArgumentException($"SGD: learning-rate multiplier of '{bad.Key}' must be a finite number > 0, got {bad.Value}.");
        }
    }

    /// <summary>Creates TorchSharp's SGD over the model's trainable parameters (frozen ones are left out).</summary>
    /// <param name="model">The model.</param>
    public SGD Create(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        Validate();
        if (LearningRateScales is not null)
        {
            return CreateScaled(model);
        }

        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        if (!NoDecayOnNormAndBias)
        {
            return torch.optim.SGD(trainable.Select(p => p.parameter), LearningRate, Momentum, 0, WeightDecay, Nesterov);
        }

        var decay = trainable.Where(p => p.parameter.dim() > 1).Select(p => p.parameter).ToList();
        var noDecay = trainable.Where(p => p.parameter.dim() <= 1).Select(p => p.parameter).ToList();
        var groups = new List<SGD.ParamGroup>
        {
            new(decay, new SGD.Options { LearningRate = LearningRate, weight_decay = WeightDecay }),
            new(noDecay, new SGD.Options { LearningRate = LearningRate, weight_decay = 0 }),
        };
        return torch.optim.SGD(groups, LearningRate, Momentum, 0, WeightDecay, Nesterov);
    }

    private SGD CreateScaled(nn.Module model)
    {
        if (model is not ResNet resnet)
        {
            throw new ArgumentException($"SGD: LearningRateScales needs a ResNet (its ParameterGroups name the parts), got {model.GetType().Name}.", nameof(model));
        }

        var groups = resnet.ParameterGroups(splitNoWeightDecay: NoDecayOnNormAndBias);
        var all = resnet.ParameterGroups(splitNoWeightDecay: false, trainableOnly: false).Select(g => g.Name).ToHashSet(StringComparer.Ordinal);
        var unknown = LearningRateScales!.Keys.Where(k => !all.Contains(k)).ToList();
        if (unknown.Count > 0)
        {
            throw new ArgumentException(
                $"SGD: LearningRateScales names {string.Join(", ", unknown.Select(k => $"'{k}'"))}, which {resnet.ModelName} does not have; its parts are {string.Join(", ", all)}.", nameof(model));
        }

        var paramGroups = groups.Select(g =>
        {
            string part = g.NoWeightDecay ? g.Name[..^".no_decay".Length] : g.Name;
            double rate = LearningRate * (LearningRateScales.TryGetValue(part, out var scale) ? scale : 1.0);
            return new SGD.ParamGroup(g.Parameters, new SGD.Options { LearningRate = rate, weight_decay = g.NoWeightDecay ? 0 : WeightDecay });
        }).ToList();
        return torch.optim.SGD(paramGroups, LearningRate, Momentum, 0, WeightDecay, Nesterov);
    }
}

/// <summary>The shape of a learning-rate schedule (public as the factories of <see cref="LearningRateSchedule"/>).</summary>
internal enum ScheduleKind
{
    /// <summary>Constant learning rate.</summary>
    Constant,

    /// <summary>The paper's: divided by 10 at given points (§4.2: at 32k and 48k of 64k iterations, i.e. at 50 % and 75 %).</summary>
    Step,

    /// <summary>Cosine annealing to <see cref="LearningRateSchedule.MinLearningRate"/> (Loshchilov and Hutter 2017), after an optional linear warm-up.</summary>
    Cosine,

    /// <summary>One-cycle (Smith 2018): warm up from max/25 to max over <see cref="LearningRateSchedule.WarmupFraction"/>, then cosine down to max/(25·10⁴); momentum cycles 0.95 → 0.85 → 0.95.</summary>
    OneCycle,
}

/// <summary>
/// A learning-rate schedule, stepped once per iteration and built from TorchSharp's own schedulers
/// (<c>MultiStepLR</c>, <c>CosineAnnealingLR</c>, <c>LinearLR</c> + <c>SequentialLR</c>; one-cycle is PyTorch's <c>OneCycleLR</c>
/// re-implemented, because TorchSharp's mis-anneals a second parameter group). Made by
/// <see cref="Step"/>, <see cref="StepAt"/>, <see cref="Cosine"/>, <see cref="OneCycle"/>, <see cref="Constant"/> or
/// <see cref="Parse"/>; each property applies to the shape that names it (adjust one with <c>with</c>).
/// </summary>
public sealed record LearningRateSchedule
{
    private LearningRateSchedule()
    {
    }

    /// <summary>The shape.</summary>
    internal ScheduleKind Kind { get; init; } = ScheduleKind.Step;

    /// <summary>
    /// Step schedule: where the rate is divided, as fractions of the whole run (default 0.5 and 0.75, the paper's
    /// 32k and 48k of 64k iterations). Ignored when <see cref="StepMilestones"/> is set.
    /// </summary>
    public IReadOnlyList<double> MilestoneFractions { get; init; } = new[] { 0.5, 0.75 };

    /// <summary>Step schedule: exact iterations at which the rate is divided (e.g. 32000, 48000), or null to use <see cref="MilestoneFractions"/>.</summary>
    public IReadOnlyList<int>? StepMilestones { get; init; }

    /// <summary>Step schedule: the factor at each milestone. Default 0.1 (÷10).</summary>
    public double Gamma { get; init; } = 0.1;

    /// <summary>Cosine: linear warm-up iterations from 1/<see cref="WarmupDivisor"/> of the rate. Default 0.</summary>
    public int WarmupSteps { get; init; }

    /// <summary>Cosine warm-up starts at rate / this. Default 10 (the paper's 0.01 warm-up for ResNet-110 at a 0.1 rate).</summary>
    public double WarmupDivisor { get; init; } = 10;

    /// <summary>Cosine: the final rate. Default 0.</summary>
    public double MinLearningRate { get; init; }

    /// <summary>One-cycle: fraction of the run spent warming up. Default 0.3 (PyTorch's).</summary>
    public double WarmupFraction { get; init; } = 0.3;

    /// <summary>The paper's step schedule (÷10 at 50 % and 75 %).</summary>
    public static LearningRateSchedule PaperStep { get; } = new() { Kind = ScheduleKind.Step };

    /// <summary>A constant learning rate.</summary>
    public static LearningRateSchedule Constant() => new() { Kind = ScheduleKind.Constant };

    /// <summary>
    /// The paper's shape: the rate multiplied by <paramref name="gamma"/> at fractions of the run (§4.2: ÷10 at 32k and
    /// 48k of 64k iterations, i.e. at 50 % and 75 %).
    /// </summary>
    /// <param name="milestoneFractions">Where the rate drops, as fractions of the whole run; null: 0.5 and 0.75.</param>
    /// <param name="gamma">The factor at each milestone. Default 0.1 (÷10).</param>
    public static LearningRateSchedule Step(IReadOnlyList<double>? milestoneFractions = null, double gamma = 0.1) =>
        new() { Kind = ScheduleKind.Step, MilestoneFractions = milestoneFractions ?? PaperStep.MilestoneFractions, Gamma = gamma };

    /// <summary>The step shape with the drops at exact iterations (e.g. 32000 and 48000).</summary>
    /// <param name="iterations">Iterations at which the rate is multiplied by <paramref name="gamma"/>.</param>
    /// <param name="gamma">The factor at each milestone. Default 0.1 (÷10).</param>
    public static LearningRateSchedule StepAt(IReadOnlyList<int> iterations, double gamma = 0.1)
    {
        ArgumentNullException.ThrowIfNull(iterations);
        return new() { Kind = ScheduleKind.Step, StepMilestones = iterations, Gamma = gamma };
    }

    /// <summary>Cosine annealing to <paramref name="minLearningRate"/> (Loshchilov and Hutter 2017), after an optional linear warm-up.</summary>
    /// <param name="warmupSteps">Linear warm-up iterations from 1/<paramref name="warmupDivisor"/> of the rate. Default 0.</param>
    /// <param name="minLearningRate">The final rate. Default 0.</param>
    /// <param name="warmupDivisor">The warm-up starts at rate / this. Default 10.</param>
    public static LearningRateSchedule Cosine(int warmupSteps = 0, double minLearningRate = 0, double warmupDivisor = 10) =>
        new() { Kind = ScheduleKind.Cosine, WarmupSteps = warmupSteps, MinLearningRate = minLearningRate, WarmupDivisor = warmupDivisor };

    /// <summary>
    /// One-cycle (Smith 2018): warm up from max/25 to max over <paramref name="warmupFraction"/> of the run, then cosine
    /// down to max/(25·10⁴); momentum cycles 0.95 → 0.85 → 0.95. Usually wants a higher peak rate than the step schedule (e.g. 0.2).
    /// </summary>
    /// <param name="warmupFraction">Fraction of the run spent warming up. Default 0.3 (PyTorch's).</param>
    public static LearningRateSchedule OneCycle(double warmupFraction = 0.3) => new() { Kind = ScheduleKind.OneCycle, WarmupFraction = warmupFraction };

    /// <summary>Parses <c>constant</c>, <c>step</c>, <c>cosine</c> or <c>onecycle</c>.</summary>
    /// <exception cref="ArgumentException">Any other name.</exception>
    public static LearningRateSchedule Parse(string name) => (name ?? string.Empty).Trim().ToLowerInvariant() switch
    {
        "constant" => Constant(),
        "step" => PaperStep,
        "cosine" => Cosine(),
        "onecycle" or "one-cycle" => OneCycle(),
        _ => throw new ArgumentException($"Unknown schedule '{name}': expected constant, step, cosine or onecycle."),
    };

    /// <summary>Creates the TorchSharp scheduler over <paramref name="optimizer"/> for a run of <paramref name="totalSteps"/> iterations.</summary>
    /// <exception cref="ArgumentException">A setting is out of range for this run.</exception>
    public lr_scheduler.LRScheduler Create(Optimizer optimizer, int totalSteps)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentOutOfRangeException.ThrowIfLessThan(totalSteps, 1);
        switch (Kind)
        {
            case ScheduleKind.Constant:
                return lr_scheduler.LambdaLR(optimizer, _ => 1.0);
            case ScheduleKind.Step:
                var milestones = (StepMilestones ?? MilestoneFractions.Select(f => (int)Math.Round(f * totalSteps)).ToArray()).ToList();
                if (milestones.Any(m => m < 1) || !(Gamma > 0))
                {
                    throw new ArgumentException($"Step schedule: milestones must be ≥ 1 and gamma > 0, got [{string.Join(", ", milestones)}] and {Gamma}.");
                }

                return lr_scheduler.MultiStepLR(optimizer, milestones, Gamma);
            case ScheduleKind.Cosine:
                if (WarmupSteps < 0 || WarmupSteps >= totalSteps || !(WarmupDivisor >= 1) || !(MinLearningRate >= 0))
                {
                    throw new ArgumentException($"Cosine schedule: warm-up must be in 0 … {totalSteps - 1} steps, divisor ≥ 1, minimum ≥ 0; got {WarmupSteps}, {WarmupDivisor}, {MinLearningRate}.");
                }

                var cosine = lr_scheduler.CosineAnnealingLR(optimizer, totalSteps - WarmupSteps, MinLearningRate);
                if (WarmupSteps == 0)
                {
                    return cosine;
                }

                var warmup = lr_scheduler.LinearLR(optimizer, 1 / WarmupDivisor, 1.0, WarmupSteps);
                return lr_scheduler.SequentialLR(optimizer, new[] { warmup, cosine }, new[] { WarmupSteps });
            case ScheduleKind.OneCycle:
                if (!(WarmupFraction > 0 && WarmupFraction < 1))
                {
                    throw new ArgumentException($"One-cycle schedule: warm-up fraction must be in (0, 1), got {WarmupFraction}.");
                }

                // Not TorchSharp's OneCycleLR: with more than one parameter group it anneals group 1 wrongly (see OneCycleScheduler).
                var maxLrs = optimizer.ParamGroups.Select(g => g.LearningRate).ToArray();
                return new OneCycleScheduler(optimizer, maxLrs, totalSteps, WarmupFraction);
            default:
                throw new ArgumentException($"Unknown schedule kind {Kind}.");
        }
    }

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        ScheduleKind.Step => $"step ÷{1 / Gamma:G3} at " + (StepMilestones is { } s ? string.Join(", ", s) + " iterations" : string.Join(", ", MilestoneFractions.Select(f => $"{f:P0}"))),
        ScheduleKind.Cosine => WarmupSteps > 0 ? $"cosine after {WarmupSteps} warm-up steps" : "cosine",
        ScheduleKind.OneCycle => $"one-cycle ({WarmupFraction:P0} warm-up)",
        _ => "constant",
    };
}
