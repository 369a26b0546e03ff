using TorchSharp;
using TorchSharp.Modules;

namespace ResNetSharp.Benchmarks;

/// <summary>Model set-up shared by the block and model benchmarks.</summary>
internal static class Models
{
    /// <summary>
    /// A randomly initialised model in eval mode whose BatchNorms have random affine parameters and running
    /// statistics, so that folding them (ForInference) is not the identity and the agreement checks mean something.
    /// </summary>
    public static ResNet CreateEval(string name)
    {
        var model = ResNetFactory.Create(name);
        using (torch.no_grad())
        {
            foreach (var (_, module) in model.named_modules())
            {
                if (module is BatchNorm2d norm)
                {
                    norm.weight?.uniform_(0.5, 1.5);
                    norm.bias?.uniform_(-0.2, 0.2);
                    norm.running_mean?.uniform_(-0.2, 0.2);
                    norm.running_var?.uniform_(0.5, 1.5);
                }
            }
        }

        model.eval();
        return model;
    }
}
