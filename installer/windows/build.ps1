# UNTESTED HERE: written on Linux, never run on Windows by this project yet (see installer/README.md).
#
# Build the RadAssist one-folder app on Windows, self-test it, and wrap it in an Inno Setup installer:
#     powershell -ExecutionPolicy Bypass -File installer\windows\build.ps1 [-Provider directml|cpu]
# Needs: Python 3.11 (the `py` launcher), Inno Setup 6 (ISCC.exe), network for pip, and Microsoft C++
# Build Tools (pyradiomics-bhklab is published as source only; pip compiles it).
# Output: dist\radassist\ (radassist.exe = CLI, radassist-viewer.exe = windowed viewer) and
#         dist\RadAssist-<version>-setup.exe.
#
# Provider: onnxruntime-directml runs the models on any DirectX 12 GPU (AMD, Intel, NVIDIA) and falls
# back to the CPU; radassist.inference.engine.choose_providers puts DmlExecutionProvider before the CPU.
# It replaces the CPU-only onnxruntime wheel (both install the same `onnxruntime` module: keep one).
param(
    [ValidateSet("directml", "cpu")] [string] $Provider = "directml",
    [string] $PyInstallerVersion = "6.22.3",
    [string] $InnoSetup = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe"
)
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")

function Invoke-Checked([string] $Exe, [string[]] $Arguments) {
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

$started = Get-Date
$venv = "build\bundle-venv-windows"
$python = "$venv\Scripts\python.exe"
if (-not (Test-Path $python)) { Invoke-Checked "py" @("-3.11", "-m", "venv", $venv) }
Invoke-Checked $python @("-m", "pip", "install", "--upgrade", "pip")
Invoke-Checked $python @("-m", "pip", "install", ".", "pyinstaller==$PyInstallerVersion")
if ($Provider -eq "directml") {
    Invoke-Checked $python @("-m", "pip", "uninstall", "--yes", "onnxruntime")
    Invoke-Checked $python @("-m", "pip", "install", "onnxruntime-directml")
}
Invoke-Checked $python @("-m", "PyInstaller", "--noconfirm", "--distpath", "dist", "--workpath", "build\pyinstaller",
                         "installer\pyinstaller\radassist.spec")
$built = Get-Date

# First-run self-test of the built app, headless (Qt's offscreen platform ships with PySide6).
$env:QT_QPA_PLATFORM = "offscreen"
try { Invoke-Checked "dist\radassist\radassist.exe" @("--selftest") }
finally { Remove-Item Env:QT_QPA_PLATFORM }

$version = (& $python -c "import radassist; print(radassist.__version__)").Trim()
Invoke-Checked $InnoSetup @("/DAppVersion=$version", "installer\windows\radassist.iss")

$sizeMB = [math]::Round(((Get-ChildItem dist\radassist -Recurse -File | Measure-Object Length -Sum).Sum) / 1MB)
Write-Host ("build.ps1: built dist\radassist in {0:N0} s ({1} MB), installer dist\RadAssist-{2}-setup.exe" -f `
    ($built - $started).TotalSeconds, $sizeMB, $version)
