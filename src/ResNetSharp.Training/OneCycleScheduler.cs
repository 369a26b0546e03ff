using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch.optim;

namespace ResNetSharp.Training;

/// <summary>
/// One-cycle (Smith 2018) as PyTorch's <c>OneCycleLR</c> computes it with its defaults (two phases, cosine annealing,
/// div_factor 25, final_div_factor 10⁴, momentum cycled 0.95 → 0.85 → 0.95), for every parameter group alike.
/// </summary>
/// <remarks>
/// Written here instead of using TorchSharp 0.107's <c>lr_scheduler.OneCycleLR</c>: its phase loop tests the parameter
/// group's index where PyTorch tests the phase's (<c>i == _schedule_phases.Length - 1</c> with <c>i</c> the group), so the
/// group at index 1 never leaves the warm-up formula. Past the warm-up that group's rate and momentum swing back and
/// forth as cos(π·step/warm-up) does: in a 40-epoch run with weight decay off for BatchNorm and biases (group 1) their
/// rate fell to max/25 by epoch 24 and was back at 0.104 of 0.2 by epoch 30, where it should have been 0.057. Group 0 and
/// groups from index 2 on were right, so single-group runs are unaffected; this class gives them bit-identical rates
/// (the same expressions in the same order). Checked against PyTorch 1.13's <c>OneCycleLR</c> with three groups
/// (<c>tools/make_fixtures.py</c>, <c>LearningRateScheduleTests</c>).
/// </remarks>
internal sealed class OneCycleScheduler : lr_scheduler.LRScheduler
{
    private const double DivFactor = 25;
    private const double FinalDivFactor = 1e4;
    private const double BaseMomentum = 0.85;
    private const double MaxMomentum = 0.95;

    private readonly List<ILearningRateController> groups;
    private readonly double[] maxRates;
    private readonly double warmupEnd;
    private readonly double lastStep;
    private readonly int totalSteps;
    private int stepNumber = -1;

    /// <summary>Sets every group's momentum (or first beta) to 0.95 and its rate to its maximum / 25, as step 0.</summary>
    /// <param name="optimizer">SGD, RMSprop (momentum) or an Adam-family optimizer (first beta); each group's current rate is its maximum.</param>
    /// <param name="maxRates">Each group's peak rate, in group order.</param>
    /// <param name="totalSteps">Iterations in the whole run.</param>
    /// <param name="warmupFraction">Fraction of the run spent warming up, in (0, 1).</param>
    /// <exception cref="ArgumentException">A group has neither momentum nor betas, or the counts disagree.</exception>
    internal OneCycleScheduler(Optimizer optimizer, IReadOnlyList<double> maxRates, int totalSteps, double warmupFraction)
        : base(optimizer, -1, false)
    {
        groups = optimizer.ParamGroups.ToList();
        if (maxRates.Count != groups.Count)
        {
            throw new ArgumentException($"One-cycle: {maxRates.Count} peak rates for {groups.Count} parameter groups.", nameof(maxRates));
        }

        var unsupported = groups.FindIndex(g => g is not IMomentum and not IBetas);
        if (unsupported >= 0)
        {
            throw new ArgumentException(
                $"One-cycle cycles momentum, but parameter group {unsupported} ({groups[unsupported].GetType().FullName}) has neither momentum nor betas; use SGD, RMSprop or an Adam-family optimizer, or another schedule.",
                nameof(optimizer));
        }

        this.maxRates = maxRates.ToArray();
        this.totalSteps = totalSteps;
        warmupEnd = warmupFraction * totalSteps - 1;
        lastStep = totalSteps - 1;
        foreach (var g in groups)
        {
            SetMomentum(g, MaxMomentum);
        }

        step();
    }

    /// <inheritdoc/>
    public override void step(int? epoch)
    {
        stepNumber = epoch ?? stepNumber + 1;
        base.step(epoch);
    }

    /// <inheritdoc/>
    protected override IEnumerable<double> get_lr()
    {
        if (stepNumber > totalSteps)
        {
            throw new InvalidOperationException($"One-cycle: stepped {stepNumber + 1} times in a run of {totalSteps} steps.");
        }

        // PyTorch's two phases: warm-up over steps 0 … warmupEnd, annealing from warmupEnd to the last step.
        bool warming = stepNumber <= warmupEnd;
        double pct = warming ? stepNumber / warmupEnd : (stepNumber - warmupEnd) / (lastStep - warmupEnd);
        var rates = new double[groups.Count];
        for (int i = 0; i < groups.Count; i++)
        {
            double max = maxRates[i], initial = max / DivFactor, min = initial / FinalDivFactor;
            rates[i] = warming ? Anneal(initial, max, pct) : Anneal(max, min, pct);
            SetMomentum(groups[i], warming ? Anneal(MaxMomentum, BaseMomentum, pct) : Anneal(BaseMomentum, MaxMomentum, pct));
        }

        return rates;
    }

    /// <inheritdoc/>
    protected override IEnumerable<double> get_closed_form_lr() => get_lr();

    private static double Anneal(double start, double end, double pct) => end + (start - end) / 2.0 * (Math.Cos(Math.PI * pct) + 1);

    private static void SetMomentum(ILearningRateController group, double momentum)
    {
        if (group is IBetas betas)
        {
            betas.Betas = (momentum, betas.Betas.Item2);
        }
        else
        {
            ((IMomentum)group).Momentum = momentum;
        }
    }
}
