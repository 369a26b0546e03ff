using System;
using ResNetSharp.Distributed;

namespace ResNetSharp.Cli.Commands;

/// <summary>The CLI's link to ResNetSharp.Distributed.</summary>
internal static class Distributed
{
    /// <summary>
    /// Data-parallel settings when this process was started by an MPI launcher (more than one process), else null;
    /// --sync-bn without a launcher is a single process, where BatchNorm is already global.
    /// </summary>
    public static DataParallel? DataParallelFromEnvironment(bool syncBatchNorm)
    {
        DataParallel dp;
        try
        {
            dp = DataParallel.FromEnvironment(syncBatchNorm);
        }
        catch (DllNotFoundException e)
        {
            throw new InvalidOperationException(e.Message, e);
        }

        return dp.WorldSize > 1 ? dp : null;
    }
}
