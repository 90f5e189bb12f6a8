#!/usr/bin/env python3
"""The ptflops figures `dsl check` compares with (README, "Counting rules"): ResNet-18 built as
torchvision's resnet18 (basic blocks whose one nn.ReLU module is called twice, no torchvision
needed), counted by ptflops with its default settings and with count_functional=False, next to
the parameters and batch-norm buffers. Needs torch and ptflops (pip install ptflops).

    python3 bench/ptflops_resnet18.py
    .build/debug/dsl check Tests/CLITests/good-specs/resnet-18.dsl | tail -8

ptflops 0.7.5, torch 2.15 (2026-11-27): default 1,825,313,768 MACs; count_functional=False
1,822,177,768, the figure of the `ptflops:` line; 11,689,512 parameters, 9,600 buffers."""
import torch, torch.nn as nn
from ptflops import get_model_complexity_info

class Basic(nn.Module):
    def __init__(self, cin, c, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False); self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False); self.bn2 = nn.BatchNorm2d(c)
        self.down = None
        if stride != 1 or cin != c:
            self.down = nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False), nn.BatchNorm2d(c))
    def forward(self, x):
        identity = x if self.down is None else self.down(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)

class ResNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False); self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True); self.maxpool = nn.MaxPool2d(3, 2, 1)
        blocks, cin = [], 64
        for c, s in [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)]:
            blocks.append(Basic(cin, c, s)); cin = c
        self.layers = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1); self.fc = nn.Linear(512, 1000)
    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.avgpool(self.layers(x))
        return self.fc(torch.flatten(x, 1))

m = ResNet18().eval()
print(f"parameters {sum(p.numel() for p in m.parameters()):,}")
print(f"buffers (running mean and variance) {sum(b.numel() for n, b in m.named_buffers() if 'num_batches' not in n):,}")
for name, kw in [("default", {}), ("count_functional=False", {"backend": "pytorch", "backend_specific_config": {"count_functional": False}})]:
    macs, _ = get_model_complexity_info(m, (3, 224, 224), as_strings=False, print_per_layer_stat=False, verbose=False, **kw)
    print(f"ptflops {name}: {macs:,} MACs")
