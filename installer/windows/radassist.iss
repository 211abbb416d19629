; UNTESTED HERE: written on Linux, never compiled by this project yet (see installer/README.md).
;
; Inno Setup 6 script: installs the PyInstaller one-folder app (dist\radassist, built by build.ps1)
; into Program Files, read-only for users; user data (feedback store, settings) goes to
; %LOCALAPPDATA%\RadAssist (platformdirs) and is kept on uninstall. Compile:
;     ISCC.exe /DAppVersion=0.1.0 installer\windows\radassist.iss
; After copying the files the installer runs `radassist.exe --selftest` and says so if it fails.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "RadAssist"

[Setup]
AppId={{6C1E4F0B-2D8A-4B7E-9F35-0A7C5D2E9B41}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=RadAssist contributors
AppComments=Chest X-ray reading assistant (research use, not a medical device)
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
LicenseFile=..\..\LICENSE
OutputDir=..\..\dist
OutputBaseFilename=RadAssist-{#AppVersion}-setup
SetupIconFile=..\icons\radassist.ico
UninstallDisplayIcon={app}\radassist-viewer.exe
Compression=lzma2/max
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
; per-machine by default (IT installs it); a user without admin rights may install for themselves
PrivilegesRequiredOverridesAllowed=dialog
WizardStyle=modern

[Files]
Source: "..\..\dist\radassist\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\radassist-viewer.exe"
Name: "{group}\{#AppName} demo (bundled samples)"; Filename: "{app}\radassist.exe"; Parameters: "demo"
Name: "{group}\{#AppName} self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\radassist.exe"" --selftest"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\radassist-viewer.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Run]
Filename: "{app}\radassist-viewer.exe"; Description: "Open {#AppName}"; Flags: nowait postinstall skipifsilent

[Code]
procedure CurStepChanged(CurStep: TSetupStep);
var
  ResultCode: Integer;
begin
  if CurStep = ssPostInstall then
  begin
    WizardForm.StatusLabel.Caption := 'Checking the installation (models, sample read, viewer)...';
    { offscreen: the self-test builds the viewer window without showing it }
    if not Exec(ExpandConstant('{cmd}'),
                '/c "set QT_QPA_PLATFORM=offscreen&& "' + ExpandConstant('{app}\radassist.exe') + '" --selftest"',
                '', SW_HIDE, ewWaitUntilTerminated, ResultCode) or (ResultCode <> 0) then
      MsgBox('The RadAssist self-test failed (exit code ' + IntToStr(ResultCode) + '). ' +
             'Run "RadAssist self-test" from the Start menu to see why.', mbError, MB_OK);
  end;
end;
