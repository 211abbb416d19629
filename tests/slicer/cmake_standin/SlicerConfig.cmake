# STAND-IN for the Slicer SDK's SlicerConfig.cmake, used only by tests/slicer/test_slicer_extension_tree.py.
# It defines the variables and macros the RadAssist extension's CMakeLists.txt uses, so that real CMake can
# configure the extension here (no Slicer build exists on this machine). It builds nothing: the macro
# checks the listed files exist, as Slicer's does, and records what it was given for the test to compare.

set(Slicer_FOUND TRUE)
set(Slicer_USE_PYTHONQT ON)
set(Slicer_QTSCRIPTEDMODULES_LIB_DIR "lib/Slicer-standin/qt-scripted-modules")
set(Slicer_USE_FILE "${CMAKE_CURRENT_LIST_DIR}/empty.cmake")
set(Slicer_EXTENSION_GENERATE_CONFIG "${CMAKE_CURRENT_LIST_DIR}/empty.cmake")
set(Slicer_EXTENSION_CPACK "${CMAKE_CURRENT_LIST_DIR}/empty.cmake")
set(BUILD_TESTING ON)

function(_standin_json_list out)
  set(quoted)
  foreach(item IN LISTS ARGN)
    list(APPEND quoted "\"${item}\"")
  endforeach()
  list(JOIN quoted ", " joined)
  set(${out} "[${joined}]" PARENT_SCOPE)
endfunction()

macro(slicerMacroBuildScriptedModule)
  cmake_parse_arguments(STANDIN "WITH_GENERIC_TESTS;WITH_SUBDIR;VERBOSE" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
  if(STANDIN_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "Unknown keywords given to slicerMacroBuildScriptedModule(): ${STANDIN_UNPARSED_ARGUMENTS}")
  endif()
  foreach(_file IN LISTS STANDIN_SCRIPTS STANDIN_RESOURCES)
    if(NOT EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/${_file}")
      message(FATAL_ERROR "slicerMacroBuildScriptedModule given nonexistent file '${_file}'")
    endif()
  endforeach()
  _standin_json_list(_scripts ${STANDIN_SCRIPTS})
  _standin_json_list(_resources ${STANDIN_RESOURCES})
  if(STANDIN_WITH_GENERIC_TESTS)
    set(_generic "true")
  else()
    set(_generic "false")
  endif()
  file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/standin-scripted-module.json"
    "{\"name\": \"${STANDIN_NAME}\", \"scripts\": ${_scripts}, \"resources\": ${_resources}, \"generic_tests\": ${_generic}}")
endmacro()

function(slicer_add_python_unittest)
endfunction()
