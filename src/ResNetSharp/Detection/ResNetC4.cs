using System;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Detection;

/// <summary>
/// The Faster R-CNN "C4" split of a four-stage ResNet (paper §4, appendix A): <see cref="Backbone"/> runs conv1 …
/// conv4_x once over the image (stride 16; 1024 channels for ResNet-50/101), RoI pooling crops per-box features from
/// it, and <see cref="Head"/> runs conv5_x on each pooled box and global-average-pools it to a 2048-d vector.
/// </summary>
/// <remarks>
/// Both halves are views over the one <see cref="Model"/>: they share its modules and parameters (so an optimizer can
/// treat them separately, and a checkpoint of the whole network still loads into <see cref="Model"/>), with the
/// state-dict keys of the whole network (<c>conv1</c>, <c>bn1</c>, <c>layer1</c> … <c>layer3</c>; <c>layer4</c>).
/// The classifier <c>fc</c> is not used. Disposing this object disposes the model.
/// </remarks>
public sealed class ResNetC4 : IDisposable
{
    /// <summary>Splits <paramref name="model"/>; the split takes ownership of it.</summary>
    /// <exception cref="ArgumentException">The model does not have exactly four stages.</exception>
    public ResNetC4(ResNet model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Stages.Count != 4)
        {
            throw new ArgumentException(
                $"The C4 split needs a four-stage (ImageNet) ResNet, got {model.ModelName} with {model.Stages.Count} stages.", nameof(model));
        }

        Model = model;
        BackboneModule = new C4Backbone(model);
        HeadModule = new C4Head(model);
    }

    /// <summary>The whole network the halves share.</summary>
    public ResNet Model { get; }

    /// <summary>conv1 … conv4_x: image (N × 3 × H × W) to the shared map (N × 1024 × H/16 × W/16 for ResNet-50/101).</summary>
    public nn.Module<Tensor, Tensor> Backbone => BackboneModule;

    internal C4Backbone BackboneModule { get; }

    /// <summary>conv5_x + global average pool: pooled boxes (K × 1024 × 14 × 14) to K × 2048.</summary>
    public nn.Module<Tensor, Tensor> Head => HeadModule;

    internal C4Head HeadModule { get; }

    /// <summary>Channels of the backbone's map (1024 for bottleneck tables, 256 for basic blocks).</summary>
    public long BackboneChannels => BackboneModule.OutChannels;

    /// <summary>Length of the head's pooled vector per box (2048 for bottleneck tables, 512 for basic blocks).</summary>
    public long HeadChannels => HeadModule.OutChannels;

    /// <summary>Stride of the backbone's map (16 unless conv4_x's stride was replaced by dilation).</summary>
    public int FeatureStride => Model.FeatureInfo[3].Stride;

    /// <summary>Spatial scale that maps boxes in image coordinates onto the backbone's map: 1 / <see cref="FeatureStride"/>.</summary>
    public double SpatialScale => 1.0 / FeatureStride;

    /// <summary>Builds a registered four-stage model and splits it, e.g. <c>ResNetC4.Create("resnet101")</c>.</summary>
    /// <exception cref="ArgumentException">Unknown name or not a four-stage network.</exception>
    public static ResNetC4 Create(string name, ResNetOptions? options = null, StridePlacement? stride = null)
    {
        var model = ResNetFactory.Create(name, options, stride);
        try
        {
            return new ResNetC4(model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// RoIAlign of boxes on the backbone's map, as <c>torchvision.ops.roi_align(map, boxes, pooledSize,
    /// SpatialScale, samplingRatio, aligned=True)</c>: written with TorchSharp tensor ops, so gradients reach the map.
    /// The step between <see cref="Backbone"/> and <see cref="Head"/>; <see cref="ForwardBoxes"/> runs all three.
    /// </summary>
    /// <remarks>
    /// An empty box list gives a 0 × C × h × w result; sampling points more than one cell outside the map contribute
    /// zero, points within one cell are clamped to the border. Boxes with x2 &lt; x1 or y2 &lt; y1, non-finite coordinates
    /// and batch indices outside the batch are rejected.
    /// </remarks>
    /// <param name="map">The backbone's output, N × <see cref="BackboneChannels"/> × h × w.</param>
    /// <param name="boxes">K × 5: batch index, x1, y1, x2, y2 in image pixels.</param>
    /// <param name="pooledSize">RoI feature size. Default 14 (as in the paper's Faster R-CNN with conv5_x stride 2).</param>
    /// <param name="samplingRatio">Sampling points per bin and axis (≤ 0: adaptive). Default 2.</param>
    /// <returns>K × <see cref="BackboneChannels"/> × <paramref name="pooledSize"/> × <paramref name="pooledSize"/>.</returns>
    /// <exception cref="ArgumentException">The boxes are malformed (see remarks).</exception>
    public Tensor PoolBoxes(Tensor map, Tensor boxes, int pooledSize = 14, int samplingRatio = 2) =>
        RoiOps.RoiAlign(map, boxes, pooledSize, pooledSize, SpatialScale, samplingRatio, aligned: true);

    /// <summary>
    /// The detection path for one batch: backbone once, <see cref="PoolBoxes"/> (RoIAlign) per box at
    /// <paramref name="pooledSize"/> × <paramref name="pooledSize"/>, then the head. Returns K × 2048 box features.
    /// </summary>
    /// <param name="images">N × 3 × H × W.</param>
    /// <param name="boxes">K × 5: batch index, x1, y1, x2, y2 in image pixels.</param>
    /// <param name="pooledSize">RoI feature size. Default 14 (as in the paper's Faster R-CNN with conv5_x stride 2).</param>
    /// <param name="samplingRatio">RoIAlign sampling points per bin and axis (≤ 0: adaptive). Default 2.</param>
    public Tensor ForwardBoxes(Tensor images, Tensor boxes, int pooledSize = 14, int samplingRatio = 2)
    {
        using var scope = torch.NewDisposeScope();
        var map = Backbone.call(images);
        var pooled = PoolBoxes(map, boxes, pooledSize, samplingRatio);
        return Head.call(pooled).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose() => Model.Dispose();
}

/// <summary>The C4 backbone: conv1 … conv4_x of a <see cref="ResNet"/> (a view sharing its modules).</summary>
internal sealed class C4Backbone : nn.Module<Tensor, Tensor>
{
    private readonly ResNet model;

    internal C4Backbone(ResNet model)
        : base(nameof(C4Backbone))
    {
        this.model = model;
        foreach (var (name, module) in model.named_children())
        {
            if (name is not ("layer4" or "norm" or "fc"))
            {
                register_module(name, module);
            }
        }
    }

    /// <summary>Channels of the output map (1024 for ResNet-50/101, 256 for ResNet-18/34).</summary>
    public long OutChannels => model.Stages[2].OutChannels;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        model.CheckInput(input);
        using var scope = torch.NewDisposeScope();
        var stem = model.ForwardStem(input);
        return model.RunStages(stem, 0, 3).MoveToOuterDisposeScope();
    }

}

/// <summary>The C4 head: conv5_x (+ the final norm of pre-activation nets) and global average pooling, per box.</summary>
internal sealed class C4Head : nn.Module<Tensor, Tensor>
{
    private readonly ResNet model;

    internal C4Head(ResNet model)
        : base(nameof(C4Head))
    {
        this.model = model;
        foreach (var (name, module) in model.named_children())
        {
            if (name is "layer4" or "norm")
            {
                register_module(name, module);
            }
        }
    }

    /// <summary>Channels of a pooled box (conv4_x's output, e.g. 1024).</summary>
    public long InChannels => model.Stages[3].Blocks[0].InChannels;

    /// <summary>Length of the box feature (2048 for ResNet-50/101).</summary>
    public long OutChannels => model.FeatureChannels;

    /// <summary>K × InChannels × h × w pooled boxes to K × OutChannels.</summary>
    /// <exception cref="ArgumentException">The input is not K × InChannels × h × w.</exception>
    public override Tensor forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() != 4 || input.shape[1] != InChannels)
        {
            throw new ArgumentException(
                $"C4Head expects pooled box features K×{InChannels}×h×w, got [{string.Join(", ", input.shape)}].", nameof(input));
        }

        using var scope = torch.NewDisposeScope();
        if (input.shape[0] == 0)
        {
            return torch.zeros(new long[] { 0, OutChannels }, dtype: input.dtype, device: input.device).MoveToOuterDisposeScope();
        }

        var y = model.FinishFeatures(model.RunStages(input, 3, 4));
        return y.mean(new long[] { 2, 3 }).MoveToOuterDisposeScope();
    }

}
