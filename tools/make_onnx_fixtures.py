#!/usr/bin/python3
"""Writes the ONNX import fixtures: small ResNet graphs written by PyTorch's exporter and by onnx.helper, each with
PyTorch's own output on a seeded input (the independent peer; ONNX Runtime is the second one, run by the tests).

Run with Debian's python3-torchvision and python3-onnx (PyTorch 1.13, torchvision 0.14, onnx 1.12):
    /usr/bin/python3 tools/make_onnx_fixtures.py .fixtures/onnx

Per graph NAME: NAME.onnx and NAME_io.safetensors (input, output). A graph whose files exist is skipped.
"""
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from onnx import helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_torchvision import write_safetensors  # noqa: E402
from torch_cifar_resnet import CifarNet  # noqa: E402


def randomised(make, seed):
    """A model built by make() under a fixed seed, He-initialised convs, random BN affine, non-trivial BN statistics, eval mode."""
    torch.manual_seed(seed)
    model = make()
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.momentum = None
        model.train()
        for _ in range(3):
            model(torch.randn(4, 3, 64, 64) * 1.5 + 0.3)
    return model.eval()


def export(model, x, path, **kwargs):
    tmp = path + ".tmp"
    torch.onnx.export(model, x, tmp, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, **kwargs)
    os.replace(tmp, path)


def save_io(path, x, y, **meta):
    write_safetensors(path, {"input": x.contiguous(), "output": y.contiguous()},
                      {"torch": torch.__version__, "torchvision": torchvision.__version__, **meta})


def torchvision_resnet18(out):
    """torchvision resnet18 exported twice: BN folded into the convs (eval, constant folding) and BN kept."""
    model = randomised(torchvision.models.resnet18, 3001)
    torch.manual_seed(3002)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        y = model(x)
    # Both graphs and their io are written together (the io of a graph made in another run would not match it).
    if all(os.path.exists(os.path.join(out, n + s)) for n in ("tv_resnet18_folded", "tv_resnet18_bn") for s in (".onnx", "_io.safetensors")):
        return
    for name, kwargs in (("tv_resnet18_folded", dict(do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)),
                         ("tv_resnet18_bn", dict(do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE))):
        onnx_path = os.path.join(out, name + ".onnx")
        export(model, x, onnx_path, opset_version=13, **kwargs)
        save_io(os.path.join(out, name + "_io.safetensors"), x, y, model="resnet18")
        kinds = {n.op_type for n in onnx.load(onnx_path).graph.node}
        assert ("BatchNormalization" in kinds) == name.endswith("_bn"), (name, kinds)


def torchvision_resnext(out):
    """A small torchvision ResNeXt (bottleneck [1, 2, 1, 1], 4 groups, width/group 16, 10 classes), BN folded, opset 17."""
    name = "tv_resnext_small"
    if os.path.exists(os.path.join(out, name + ".onnx")):
        return
    from torchvision.models.resnet import Bottleneck, ResNet
    model = randomised(lambda: ResNet(Bottleneck, [1, 2, 1, 1], groups=4, width_per_group=16, num_classes=10), 3101)
    torch.manual_seed(3102)
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        y = model(x)
    export(model, x, os.path.join(out, name + ".onnx"), opset_version=17)
    save_io(os.path.join(out, name + "_io.safetensors"), x, y, model="resnext [1,2,1,1] 4x16")


def torchvision_dilated(out):
    """torchvision bottlenecks with replace_stride_with_dilation=[False, True, True] (output stride 8), BN folded, opset 13."""
    name = "tv_dilated_small"
    if os.path.exists(os.path.join(out, name + ".onnx")) and os.path.exists(os.path.join(out, name + "_io.safetensors")):
        return
    from torchvision.models.resnet import Bottleneck, ResNet
    model = randomised(lambda: ResNet(Bottleneck, [1, 1, 2, 2], width_per_group=16, num_classes=10,
                                      replace_stride_with_dilation=[False, True, True]), 3601)
    torch.manual_seed(3602)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        y = model(x)
    export(model, x, os.path.join(out, name + ".onnx"), opset_version=13)
    save_io(os.path.join(out, name + "_io.safetensors"), x, y, model="dilated bottleneck [1,1,2,2] 1x16")


def cifar_option_a(out):
    """A hand-written CIFAR ResNet with option-A shortcuts (Slice + Pad in the graph), opset 13."""
    name = "cifar_option_a"
    if os.path.exists(os.path.join(out, name + ".onnx")):
        return
    model = randomised(lambda: CifarNet(n=2), 3201)
    torch.manual_seed(3202)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        y = model(x)
    # Eval mode folds BN into the convs; F.pad's pads stay a chain of shape ops (ConstantOfShape, Concat, Reshape, Slice,
    # Transpose, Cast) on constants, which the importer evaluates.
    export(model, x, os.path.join(out, name + ".onnx"), opset_version=13)
    save_io(os.path.join(out, name + "_io.safetensors"), x, y, model="cifar resnet14 option A")


def opaque_asymmetric(out):
    """
    The folded resnet18 graph rewritten with onnx.helper as another tool would write it: initializers renamed to
    opaque shuffled names (half as float_data, half raw), node names dropped, a static 64x64 input, asymmetric pads
    where they give the same outputs at 64x64 (stem conv and max pool [3,3,2,2] / [1,1,0,0], strided 3x3 convs
    [1,1,0,0]), Identity and Dropout pass-throughs, Flatten replaced by Reshape and Gemm by Gemm(transB=0).
    """
    name = "opaque_asymmetric"
    if os.path.exists(os.path.join(out, name + ".onnx")):
        return
    src = onnx.load(os.path.join(out, "tv_resnet18_folded.onnx"))
    g = src.graph
    rng = np.random.default_rng(3301)
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    order = list(inits)
    rng.shuffle(order)
    rename = {k: f"w{i:03d}" for i, k in enumerate(order)}
    nodes = []
    for n in g.node:
        inputs = [rename.get(i, i) for i in n.input]
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "Conv" and attrs.get("strides") == [2, 2] and attrs["kernel_shape"] in ([7, 7], [3, 3]):
            p = attrs["pads"][0]
            attrs["pads"] = [p, p, p - 1, p - 1]
        if n.op_type == "MaxPool":
            attrs["pads"] = [1, 1, 0, 0]
        if n.op_type == "Flatten":
            shape_name = "shape_const"
            nodes.append(helper.make_node("Constant", [], [shape_name], value=numpy_helper.from_array(np.array([-1, 512], np.int64))))
            nodes.append(helper.make_node("Reshape", [inputs[0], shape_name], list(n.output)))
            continue
        if n.op_type == "Gemm":
            w = inits[n.input[1]]
            inits[n.input[1]] = np.ascontiguousarray(w.T)  # transB = 0 wants [in, out]
            attrs["transB"] = 0
        nodes.append(helper.make_node(n.op_type, inputs, list(n.output), **attrs))
    # Identity + Dropout right after the stem ReLU.
    stem_relu = next(n for n in nodes if n.op_type == "Relu")
    old = stem_relu.output[0]
    stem_relu.output[0] = old + "_pre"
    nodes.insert(nodes.index(stem_relu) + 1, helper.make_node("Identity", [old + "_pre"], [old + "_id"]))
    nodes.insert(nodes.index(stem_relu) + 2, helper.make_node("Dropout", [old + "_id"], [old]))
    tensors = []
    for i, (k, v) in enumerate(inits.items()):
        t = numpy_helper.from_array(v, rename[k])
        if i % 2 == 0 and v.dtype == np.float32:
            t = helper.make_tensor(rename[k], onnx.TensorProto.FLOAT, v.shape, v.ravel().tolist())
        tensors.append(t)
    inp = helper.make_tensor_value_info("data", onnx.TensorProto.FLOAT, [1, 3, 64, 64])
    first = nodes[0]
    first.input[0] = "data"
    outp = helper.make_tensor_value_info(g.output[0].name, onnx.TensorProto.FLOAT, [1, 1000])
    graph = helper.make_graph(nodes, "opaque", [inp], [outp], tensors)
    model = helper.make_model(graph, producer_name="handwritten", opset_imports=[helper.make_opsetid("", 12)])
    onnx.checker.check_model(model)
    tmp = os.path.join(out, name + ".onnx.tmp")
    onnx.save(model, tmp)
    os.replace(tmp, os.path.join(out, name + ".onnx"))


def opaque_asymmetric_io(out):
    """Input and PyTorch output for the opaque graph: one image of the resnet18 input (same weights, same maths)."""
    path = os.path.join(out, "opaque_asymmetric_io.safetensors")
    if os.path.exists(path):
        return
    model = randomised(torchvision.models.resnet18, 3001)
    torch.manual_seed(3302)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        y = model(x)
    save_io(path, x, y, model="resnet18")


class Unit(nn.Module):
    """One residual unit written from the papers: basic or bottleneck, post- or pre-activation (He et al. 2016),
    shortcut B (projection where the shape changes), C (projection everywhere), A (zero-padded identity) or none (plain), stride on the 3x3 (v1.5)
    or on the first 1x1 (v1)."""

    def __init__(self, cin, planes, stride, bottleneck, preact, shortcut, v1):
        super().__init__()
        out = planes * (4 if bottleneck else 1)
        shapes = [(cin, planes, 1, stride if v1 else 1), (planes, planes, 3, 1 if v1 else stride), (planes, out, 1, 1)] if bottleneck \
            else [(cin, planes, 3, stride), (planes, planes, 3, 1)]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, k, s, k // 2, bias=False) for i, o, k, s in shapes)
        norm_widths = [cin] + [o for _, o, _, _ in shapes[:-1]] if preact else [o for _, o, _, _ in shapes]
        self.norms = nn.ModuleList(nn.BatchNorm2d(c) for c in norm_widths)
        self.preact, self.shortcut, self.stride, self.extra = preact, shortcut, stride, out - cin
        changes = stride != 1 or cin != out
        self.proj = None
        if (shortcut == "B" and changes) or shortcut == "C":
            self.proj = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), *([] if preact else [nn.BatchNorm2d(out)]))

    def forward(self, x):
        if self.preact:
            pre = F.relu(self.norms[0](x))
            y = pre
            for i, conv in enumerate(self.convs):
                y = conv(y)
                if i + 1 < len(self.convs):
                    y = F.relu(self.norms[i + 1](y))
            src = pre
        else:
            y = x
            for i, conv in enumerate(self.convs):
                y = self.norms[i](conv(y))
                if i + 1 < len(self.convs):
                    y = F.relu(y)
            src = x
        if self.shortcut == "none":
            s = None
        elif self.proj is not None:
            s = self.proj(src)
        elif self.shortcut == "A" and (self.stride != 1 or self.extra):
            s = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra))
        else:
            s = x
        y = y if s is None else y + s
        return y if self.preact else F.relu(y)


class PaperNet(nn.Module):
    def __init__(self, layers, widths, bottleneck=False, preact=False, shortcut="B", v1=False, cifar=False, stem=16, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem, 3 if cifar else 7, 1 if cifar else 2, 1 if cifar else 3, bias=False)
        self.bn1 = None if preact else nn.BatchNorm2d(stem)
        self.pool = None if cifar else nn.MaxPool2d(3, 2, 1)
        units, cin = [], stem
        for s, (n, w) in enumerate(zip(layers, widths)):
            for b in range(n):
                units.append(Unit(cin, w, (1 if s == 0 else 2) if b == 0 else 1, bottleneck, preact, shortcut, v1))
                cin = w * (4 if bottleneck else 1)
        self.units = nn.Sequential(*units)
        self.norm = nn.BatchNorm2d(cin) if preact else None
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        y = self.conv1(x)
        if self.bn1 is not None:
            y = F.relu(self.bn1(y))
        if self.pool is not None:
            y = self.pool(y)
        y = self.units(y)
        if self.norm is not None:
            y = F.relu(self.norm(y))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


PAPER_NETS = {
    # name: (constructor kwargs, input side, export kwargs)
    "preact_basic_bn": (dict(layers=[1, 2, 1, 1], widths=[16, 32, 64, 128]), 64,
                        dict(do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE), True),
    "preact_bottleneck_folded": (dict(layers=[1, 1, 2, 1], widths=[8, 16, 32, 64], bottleneck=True), 64, {}, True),
    "preact_cifar_option_a": (dict(layers=[2, 1, 1], widths=[16, 32, 64], shortcut="A", cifar=True), 32, {}, True),
    "plain_basic_folded": (dict(layers=[2, 1, 1, 1], widths=[16, 32, 64, 128], shortcut="none"), 64, {}, False),
    "plain_bottleneck_v1_bn": (dict(layers=[1, 1, 1, 1], widths=[8, 16, 32, 64], bottleneck=True, shortcut="none", v1=True), 64,
                               dict(do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE), False),
    "v1_bottleneck_c_bn": (dict(layers=[1, 2, 1, 1], widths=[8, 16, 32, 64], bottleneck=True, v1=True, shortcut="C"), 64,
                           dict(do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE), False),
}


def paper_nets(out):
    """Hand-written paper networks: pre-activation (BN kept and folded), plain, v1 bottlenecks, CIFAR option A."""
    for i, (name, (kwargs, side, export_kwargs, preact)) in enumerate(PAPER_NETS.items()):
        if os.path.exists(os.path.join(out, name + ".onnx")) and os.path.exists(os.path.join(out, name + "_io.safetensors")):
            continue
        model = randomised(lambda: PaperNet(preact=preact, **kwargs), 3400 + i)
        torch.manual_seed(3500 + i)
        x = torch.randn(2, 3, side, side)
        with torch.no_grad():
            y = model(x)
        export(model, x, os.path.join(out, name + ".onnx"), opset_version=13, **export_kwargs)
        save_io(os.path.join(out, name + "_io.safetensors"), x, y, model=name)


PARTS = [torchvision_resnet18, torchvision_resnext, torchvision_dilated, cifar_option_a, opaque_asymmetric, opaque_asymmetric_io, paper_nets]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else ".fixtures/onnx"
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    for part in PARTS:
        part(out)


if __name__ == "__main__":
    main()
